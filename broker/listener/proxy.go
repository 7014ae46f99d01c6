package listener

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ErrProxyHeader is wrapped by the errors of a missing or malformed PROXY
// protocol header.
var ErrProxyHeader = errors.New("listener: bad proxy protocol header")

// proxyV2Sig opens every PROXY protocol version 2 header.
var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// maxProxyV1 is the longest version 1 header, CRLF included.
const maxProxyV1 = 107

// proxyConn is a connection whose client address came from a PROXY
// protocol header.
type proxyConn struct {
	net.Conn
	remote net.Addr
}

// RemoteAddr returns the client's address as the proxy reported it.
func (c *proxyConn) RemoteAddr() net.Addr { return c.remote }

// readProxyHeader reads a PROXY protocol version 1 or 2 header from nc,
// reading no byte past it, and returns nc with the client's address as
// its remote address. A LOCAL (health check) or UNKNOWN header keeps the
// proxy's own address.
func readProxyHeader(nc net.Conn) (net.Conn, error) {
	var sig [12]byte // shorter than any valid header of either version
	if _, err := io.ReadFull(nc, sig[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProxyHeader, err)
	}
	var remote net.Addr
	var err error
	switch {
	case bytes.Equal(sig[:], proxyV2Sig):
		remote, err = readProxyV2(nc)
	case bytes.HasPrefix(sig[:], []byte("PROXY ")):
		remote, err = readProxyV1(nc, sig[:])
	default:
		return nil, fmt.Errorf("%w: no header", ErrProxyHeader)
	}
	if err != nil {
		return nil, err
	}
	if remote == nil {
		return nc, nil
	}
	return &proxyConn{Conn: nc, remote: remote}, nil
}

// readProxyV1 reads the rest of a text header that starts with start.
func readProxyV1(nc net.Conn, start []byte) (net.Addr, error) {
	line := append(make([]byte, 0, maxProxyV1), start...)
	var b [1]byte
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if len(line) == maxProxyV1 {
			return nil, fmt.Errorf("%w: v1 header too long", ErrProxyHeader)
		}
		if _, err := io.ReadFull(nc, b[:]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrProxyHeader, err)
		}
		line = append(line, b[0])
	}
	f := strings.Split(string(line[:len(line)-2]), " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return nil, nil
	}
	if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
		return nil, fmt.Errorf("%w: v1 header %q", ErrProxyHeader, line)
	}
	ip, err := netip.ParseAddr(f[2])
	if err != nil || ip.Is4() != (f[1] == "TCP4") {
		return nil, fmt.Errorf("%w: v1 source address %q", ErrProxyHeader, f[2])
	}
	port, err := strconv.ParseUint(f[4], 10, 16)
	if err != nil {
		return nil, fmt.Errorf("%w: v1 source port %q", ErrProxyHeader, f[4])
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))), nil
}

// readProxyV2 reads the rest of a binary header after its signature.
func readProxyV2(nc net.Conn) (net.Addr, error) {
	var h [4]byte
	if _, err := io.ReadFull(nc, h[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProxyHeader, err)
	}
	if h[0]>>4 != 2 {
		return nil, fmt.Errorf("%w: v2 version %d", ErrProxyHeader, h[0]>>4)
	}
	body := make([]byte, binary.BigEndian.Uint16(h[2:]))
	if _, err := io.ReadFull(nc, body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProxyHeader, err)
	}
	switch h[0] & 0x0f {
	case 0: // LOCAL: the proxy's own connection, e.g. a health check
		return nil, nil
	case 1: // PROXY
	default:
		return nil, fmt.Errorf("%w: v2 command %d", ErrProxyHeader, h[0]&0x0f)
	}
	var ip netip.Addr
	var port []byte
	switch h[1] {
	case 0x11: // TCP over IPv4: source, destination, source port, destination port
		if len(body) < 12 {
			return nil, fmt.Errorf("%w: v2 ipv4 addresses truncated", ErrProxyHeader)
		}
		ip, port = netip.AddrFrom4([4]byte(body[:4])), body[8:10]
	case 0x21: // TCP over IPv6
		if len(body) < 36 {
			return nil, fmt.Errorf("%w: v2 ipv6 addresses truncated", ErrProxyHeader)
		}
		ip, port = netip.AddrFrom16([16]byte(body[:16])), body[32:34]
	default: // UNSPEC, UDP or unix sockets: keep the proxy's address
		return nil, nil
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, binary.BigEndian.Uint16(port))), nil
}
