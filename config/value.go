package config

import (
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// value is a parsed config value.
type value struct {
	s string  // the value as text; addresses normalized to host:port
	i int64   // Int, Bytesize in bytes, Duration in nanoseconds
	f float64 // Float
	b bool    // Bool
}

// parseValue parses raw as a value of key k and checks its range.
func parseValue(k *Key, raw string) (value, error) {
	v := value{s: raw}
	var err error
	switch k.Kind {
	case String:
	case Int:
		v.i, err = parseInt(raw, k.Min, k.Max)
	case Bool:
		v.b, err = parseBool(raw)
	case Duration:
		var d time.Duration
		d, err = parseDuration(raw)
		v.i = int64(d)
	case Bytesize:
		v.i, err = parseBytesize(raw, k.Min, k.Max)
	case Enum:
		if !slices.Contains(k.Enum, raw) {
			err = invalidf("invalid value %q (want one of %s)", raw, strings.Join(k.Enum, ", "))
		}
	case Addr:
		v.s, err = parseAddr(raw)
	case Float:
		v.f, err = parseFloat(raw)
	default:
		err = detailf(ErrSchema, "kind %d is not a valid kind", int(k.Kind))
	}
	return v, err
}

func parseInt(s string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, invalidf("invalid integer %q", s)
	}
	if n < lo || (hi != 0 && n > hi) {
		return 0, rangeError(strconv.FormatInt(n, 10), lo, hi, "")
	}
	return n, nil
}

// rangeError reports shown (the value as the user wrote it) outside lo..hi
// (hi 0 = no upper bound); unit, if any, follows the bounds.
func rangeError(shown string, lo, hi int64, unit string) error {
	if hi == 0 {
		return invalidf("%s below minimum %d%s", shown, lo, unit)
	}
	return invalidf("%s out of range %d..%d%s", shown, lo, hi, unit)
}

func parseBool(s string) (bool, error) {
	switch s {
	case "true", "on":
		return true, nil
	case "false", "off":
		return false, nil
	}
	return false, invalidf("invalid boolean %q (want true, false, on or off)", s)
}

// splitNumber splits s into its leading decimal digits and the rest.
func splitNumber(s string) (digits, unit string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

var durationUnits = map[string]time.Duration{
	"":   time.Second, // EMQX: a bare number is seconds
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
	"h":  time.Hour,
	"d":  24 * time.Hour,
}

// parseDuration parses an EMQX-style duration: a non-negative integer and
// one of the units ms, s, m, h, d; a bare integer is seconds.
func parseDuration(s string) (time.Duration, error) {
	digits, unit := splitNumber(s)
	scale, ok := durationUnits[unit]
	n, err := strconv.ParseInt(digits, 10, 64)
	if !ok || err != nil || n > math.MaxInt64/int64(scale) {
		return 0, invalidf("invalid duration %q (want e.g. 500ms, 15s, 1m, 2h, 1d)", s)
	}
	return time.Duration(n) * scale, nil
}

var sizeUnits = map[string]int64{
	"":   1,
	"b":  1,
	"kb": 1 << 10,
	"mb": 1 << 20,
	"gb": 1 << 30,
	"tb": 1 << 40,
}

// parseBytesize parses a size: a non-negative integer and one of the units B,
// KB, MB, GB, TB (any case; 1KB = 1024 bytes); a bare integer is bytes. The
// byte count must lie within lo..hi (hi 0 = no upper bound).
func parseBytesize(s string, lo, hi int64) (int64, error) {
	digits, unit := splitNumber(s)
	scale, ok := sizeUnits[strings.ToLower(unit)]
	n, err := strconv.ParseInt(digits, 10, 64)
	if !ok || err != nil || n > math.MaxInt64/scale {
		return 0, invalidf("invalid size %q (want e.g. 1MB, 64KB)", s)
	}
	n *= scale
	if n < lo || (hi != 0 && n > hi) {
		shown := s
		if scale != 1 {
			shown = s + " (" + strconv.FormatInt(n, 10) + " bytes)"
		}
		return 0, rangeError(shown, lo, hi, " bytes")
	}
	return n, nil
}

// parseAddr parses a listen address: IP:port, [IPv6]:port, :port or a bare
// port (both meaning 0.0.0.0:port), or off. It returns host:port with the IP
// in canonical form, or "off".
func parseAddr(s string) (string, error) {
	if s == "off" {
		return s, nil
	}
	host, port := "0.0.0.0", s
	if strings.Contains(s, ":") {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", invalidf("invalid address %q (want [IP]:port, port or off)", s)
		}
		port = p
		if h != "" {
			ip, err := netip.ParseAddr(h)
			if err != nil {
				return "", invalidf("invalid address %q: %q is not an IP address (want [IP]:port, port or off)", s, h)
			}
			host = ip.String()
		}
	}
	digits, rest := splitNumber(port)
	if digits == "" || rest != "" {
		return "", invalidf("invalid address %q (want [IP]:port, port or off)", s)
	}
	p, err := strconv.ParseUint(digits, 10, 16) // digits only: an error means > 65535
	if err != nil {
		return "", invalidf("invalid address %q: port out of range 0..65535", s)
	}
	return net.JoinHostPort(host, strconv.FormatUint(p, 10)), nil
}

func parseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, invalidf("invalid number %q", s)
	}
	return f, nil
}
