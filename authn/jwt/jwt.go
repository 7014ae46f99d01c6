// Package jwt is the authentication backend that accepts JSON Web Tokens,
// with EMQX 4's emqx_auth_jwt keys and behaviour: HMAC, RSA, RSA-PSS,
// ECDSA and EdDSA signatures, keys from a secret, a PEM public key or a
// JWKS looked up by kid, claim checks, an ACL claim and the token's exp
// as the time the client is disconnected.
package jwt

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	gjwt "github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/authn"
)

// ErrConfig is wrapped by every error New returns for bad options.
var ErrConfig = errors.New("authn/jwt: invalid configuration")

// errNoKey means no configured key can verify the token.
var errNoKey = errors.New("no key for this token")

// errJWKSDown means the JWKS has never been fetched.
var errJWKSDown = errors.New("jwks unavailable")

// AllAlgorithms are the signing algorithms the backend knows. "none" is
// not one of them and is never accepted.
var AllAlgorithms = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Options configure a Backend.
type Options struct {
	Secret     []byte             // HMAC key; empty: HS* tokens are not accepted
	PublicKeys []crypto.PublicKey // RSA, ECDSA or Ed25519 keys, tried when the token names no JWKS kid
	JWKSURL    string             // JWKS endpoint; empty: none
	// JWKSRefresh is how often the JWKS is fetched again (default 5m).
	JWKSRefresh time.Duration
	// UnknownKIDInterval is the least time between fetches caused by an
	// unknown kid (default 30s).
	UnknownKIDInterval time.Duration
	// HTTPClient fetches the JWKS (default: a client with a 5s timeout).
	HTTPClient *http.Client
	// FromUsername takes the token from the username instead of the
	// password.
	FromUsername bool
	// Algorithms accepted; empty: AllAlgorithms.
	Algorithms []string
	// VerifyClaims maps claim names to their expected value: a literal,
	// %u (the username) or %c (the client id).
	VerifyClaims   map[string]string
	ACLClaim       string // default "acl"
	SuperuserClaim string // default "is_superuser"
	Issuer         string // required iss; empty: not checked
	Audience       string // required aud; empty: not checked
	Leeway         time.Duration
	Logger         *slog.Logger
	now            func() time.Time
}

// Backend verifies tokens. It is safe for concurrent use.
type Backend struct {
	o      Options
	parser *gjwt.Parser
	jwks   keyfunc.Keyfunc
	stop   context.CancelFunc
	log    *slog.Logger
	down   atomic.Bool // the last JWKS fetch failed
}

var _ access.Authenticator = (*Backend)(nil)

// New checks the options and, with a JWKS URL, fetches the key set (an
// unreachable endpoint is not an error: tokens are then answered "server
// unavailable" until a fetch succeeds).
func New(o Options) (*Backend, error) {
	if len(o.Algorithms) == 0 {
		o.Algorithms = AllAlgorithms
	}
	var errs []error
	for _, a := range o.Algorithms {
		if !slices.Contains(AllAlgorithms, a) {
			errs = append(errs, fmt.Errorf("%w: unknown or forbidden algorithm %q", ErrConfig, a))
		}
	}
	if len(o.Secret) == 0 && len(o.PublicKeys) == 0 && o.JWKSURL == "" {
		errs = append(errs, fmt.Errorf("%w: no secret, pubkey or jwks", ErrConfig))
	}
	if o.JWKSRefresh < 0 || o.UnknownKIDInterval < 0 || o.Leeway < 0 {
		errs = append(errs, fmt.Errorf("%w: negative duration", ErrConfig))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.JWKSRefresh == 0 {
		o.JWKSRefresh = 5 * time.Minute
	}
	if o.UnknownKIDInterval == 0 {
		o.UnknownKIDInterval = 30 * time.Second
	}
	if o.ACLClaim == "" {
		o.ACLClaim = "acl"
	}
	if o.SuperuserClaim == "" {
		o.SuperuserClaim = "is_superuser"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	popts := []gjwt.ParserOption{
		gjwt.WithValidMethods(o.Algorithms),
		gjwt.WithTimeFunc(o.now),
		gjwt.WithIssuedAt(),
		gjwt.WithLeeway(o.Leeway),
		gjwt.WithJSONNumber(),
	}
	if o.Issuer != "" {
		popts = append(popts, gjwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		popts = append(popts, gjwt.WithAudience(o.Audience))
	}
	b := &Backend{o: o, parser: gjwt.NewParser(popts...), log: o.Logger.With("component", "authn", "backend", "jwt")}
	if o.JWKSURL != "" {
		ctx, cancel := context.WithCancel(context.Background())
		b.stop = cancel
		noErr := true
		fetchTimeout := o.HTTPClient.Timeout
		if fetchTimeout <= 0 {
			fetchTimeout = 5 * time.Second
		}
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{o.JWKSURL}, keyfunc.Override{
			Client:                    o.HTTPClient,
			HTTPTimeout:               fetchTimeout,
			NoErrorReturnFirstHTTPReq: &noErr,
			RefreshInterval:           o.JWKSRefresh,
			RefreshUnknownKID:         rate.NewLimiter(rate.Every(o.UnknownKIDInterval), 1),
			// This bounds both the wait for the limiter and the fetch
			// itself. The limiter refuses at once a wait longer than this,
			// so past the limit an unknown kid is answered without delay.
			RateLimitWaitMax:        fetchTimeout,
			RefreshErrorHandlerFunc: b.onRefreshError,
		})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("%w: jwks: %w", ErrConfig, err)
		}
		b.jwks = kf
	}
	return b, nil
}

// onRefreshError logs a failed JWKS fetch once per outage; the last good
// key set stays in use.
func (b *Backend) onRefreshError(u string) func(context.Context, error) {
	return func(_ context.Context, err error) {
		if b.down.CompareAndSwap(false, true) {
			b.log.Warn("jwks fetch failed; keeping the last good key set", "url", u, "err", err)
		}
	}
}

// Close stops the JWKS refresh.
func (b *Backend) Close() error {
	if b.stop != nil {
		b.stop()
	}
	return nil
}

// Authenticate verifies the token in the password (or username). A field
// that holds no JWT, or a token no configured key can check, is ignored,
// as in EMQX 4; a bad signature, a failed claim check or an expired token
// is denied. The token's exp becomes the decision's ExpiresAt, its ACL
// claim the decision's ACL.
func (b *Backend) Authenticate(ctx context.Context, id access.Identity) access.Decision {
	raw := string(id.Password)
	if b.o.FromUsername {
		raw = id.Username
	}
	if strings.Count(raw, ".") != 2 {
		return access.Decision{Verdict: access.Ignore, Reason: "no token"}
	}
	claims := gjwt.MapClaims{}
	_, err := b.parser.ParseWithClaims(raw, claims, b.keyFunc(ctx))
	switch {
	case err == nil:
	case errors.Is(err, errJWKSDown):
		return access.Decision{Verdict: access.Deny, Unavailable: true, Reason: "jwks unavailable"}
	case errors.Is(err, errNoKey), errors.Is(err, gjwt.ErrTokenMalformed):
		return access.Decision{Verdict: access.Ignore, Reason: "token not verifiable: " + reason(err)}
	default:
		// Never the token itself: only what was wrong with it.
		return access.Decision{Verdict: access.Deny, Reason: "token rejected: " + reason(err)}
	}
	for name, want := range b.o.VerifyClaims {
		want = strings.NewReplacer("%u", id.Username, "%c", id.ClientID).Replace(want)
		if got, ok := claimString(claims[name]); !ok || got != want {
			return access.Decision{Verdict: access.Deny, Reason: "claim " + name + " does not match"}
		}
	}
	d := access.Decision{Verdict: access.Allow, Reason: "token verified"}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		d.ExpiresAt = exp.Time
	}
	if s, ok := claims[b.o.SuperuserClaim]; ok {
		if v, _ := claimString(s); v == "true" || v == "1" {
			d.Superuser = true
		}
	}
	if a, ok := claims[b.o.ACLClaim]; ok {
		j, err := json.Marshal(a)
		if err == nil {
			d.ACL, err = authn.ParseACL(j, id)
		}
		if err != nil {
			return access.Decision{Verdict: access.Deny, Reason: "acl claim: " + err.Error()}
		}
	}
	return d
}

// reason shortens a parse error to its cause, without the token.
func reason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s) > 120 {
		s = s[i+2:]
	}
	return s
}

// claimString renders a claim compared with verify_claims: strings as
// they are, numbers and booleans as written in JSON.
func claimString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}

// keyFunc picks the key for a token: the HMAC secret for HS*, the JWKS
// key named by kid when a JWKS is configured, otherwise the static
// public keys.
func (b *Backend) keyFunc(ctx context.Context) gjwt.Keyfunc {
	return func(t *gjwt.Token) (any, error) {
		alg, _ := t.Header["alg"].(string)
		if strings.HasPrefix(alg, "HS") {
			if len(b.o.Secret) == 0 {
				return nil, errNoKey
			}
			return b.o.Secret, nil
		}
		if kid, ok := t.Header["kid"].(string); ok && b.jwks != nil {
			k, err := b.jwks.KeyfuncCtx(ctx)(t)
			if err == nil {
				b.down.Store(false)
				return k, nil
			}
			if !errors.Is(err, jwkset.ErrKeyNotFound) && !strings.Contains(err.Error(), "rate limiter") {
				return nil, fmt.Errorf("%w: kid %q: %w", errNoKey, kid, err)
			}
			if all, rerr := b.jwks.Storage().KeyReadAll(ctx); rerr == nil && len(all) == 0 {
				return nil, errJWKSDown
			}
			return nil, fmt.Errorf("%w: unknown kid %q", errNoKey, kid)
		}
		if len(b.o.PublicKeys) > 0 {
			keys := make([]gjwt.VerificationKey, len(b.o.PublicKeys))
			for i, k := range b.o.PublicKeys {
				keys[i] = k
			}
			return gjwt.VerificationKeySet{Keys: keys}, nil
		}
		if b.jwks != nil {
			// No kid: try every key of the set.
			set, err := b.jwks.VerificationKeySet(ctx)
			if err == nil && len(set.Keys) > 0 {
				return set, nil
			}
			if all, rerr := b.jwks.Storage().KeyReadAll(ctx); rerr == nil && len(all) == 0 {
				return nil, errJWKSDown
			}
		}
		return nil, errNoKey
	}
}

// ParsePublicKeyPEM reads an RSA, ECDSA or Ed25519 public key (PKIX
// "PUBLIC KEY", PKCS #1 "RSA PUBLIC KEY", or a certificate) from PEM.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return nil, fmt.Errorf("%w: no public key in PEM", ErrConfig)
		}
		switch blk.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("authn/jwt: pubkey: %w", err)
			}
			return k, nil
		case "RSA PUBLIC KEY":
			k, err := x509.ParsePKCS1PublicKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("authn/jwt: pubkey: %w", err)
			}
			return k, nil
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("authn/jwt: pubkey: %w", err)
			}
			return c.PublicKey, nil
		}
	}
}
