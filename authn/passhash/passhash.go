// Package passhash checks and makes stored password hashes: the EMQX 4
// forms (plain, md5, sha, sha256, sha512, salted prefix and suffix,
// pbkdf2 and bcrypt, as named by password_hash), and the self-describing
// encodings of a users file (bcrypt, argon2id, PBKDF2).
package passhash

import (
	"crypto/hmac"
	"crypto/md5" // EMQX 4 stored hashes use it
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1" // EMQX 4 stored hashes use it
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrFormat is wrapped by errors about a scheme or stored hash this
// package cannot read.
var ErrFormat = errors.New("passhash: unknown format")

// Scheme is an EMQX 4 password_hash setting, e.g. "sha256",
// "salt,sha256", "sha256,salt", "pbkdf2,sha256,1000,20" or "bcrypt".
type Scheme struct {
	Name       string // plain, md5, sha, sha256, sha512, bcrypt, pbkdf2
	SaltPrefix bool   // salt,<hash>: hash(salt ‖ password)
	SaltSuffix bool   // <hash>,salt: hash(password ‖ salt)
	MAC        string // pbkdf2: its hash function
	Iterations int    // pbkdf2
	KeyLen     int    // pbkdf2: derived key length in bytes
}

// ParseScheme parses an EMQX 4 password_hash value.
func ParseScheme(s string) (Scheme, error) {
	parts := strings.Split(strings.ReplaceAll(s, " ", ""), ",")
	switch {
	case len(parts) == 1 && isDigest(parts[0]), len(parts) == 1 && parts[0] == "bcrypt":
		return Scheme{Name: parts[0]}, nil
	case len(parts) == 2 && parts[0] == "salt" && (isDigest(parts[1]) || parts[1] == "bcrypt"):
		return Scheme{Name: parts[1], SaltPrefix: true}, nil
	case len(parts) == 2 && parts[1] == "salt" && isDigest(parts[0]):
		return Scheme{Name: parts[0], SaltSuffix: true}, nil
	case len(parts) == 4 && parts[0] == "pbkdf2":
		it, err1 := strconv.Atoi(parts[2])
		kl, err2 := strconv.Atoi(parts[3])
		if _, ok := macs[parts[1]]; !ok || err1 != nil || err2 != nil || it < 1 || kl < 1 {
			break
		}
		return Scheme{Name: "pbkdf2", MAC: parts[1], Iterations: it, KeyLen: kl}, nil
	}
	return Scheme{}, fmt.Errorf("%w: password_hash %q", ErrFormat, s)
}

func isDigest(s string) bool {
	_, ok := digests[s]
	return ok || s == "plain"
}

var digests = map[string]func() hash.Hash{
	"md5": md5.New, "sha": sha1.New, "sha256": sha256.New, "sha512": sha512.New,
}

// macs are the PBKDF2 hash functions EMQX names that the standard
// library has.
var macs = map[string]func() hash.Hash{
	"md5": md5.New, "sha": sha1.New, "sha224": sha256.New224, "sha256": sha256.New,
	"sha384": sha512.New384, "sha512": sha512.New,
}

// Verify reports whether password matches stored (with salt, for the salted
// and pbkdf2 forms) under the scheme. Digests are compared as lower-case
// hex, as EMQX stores them; pbkdf2 hashes are hex as well. Comparisons
// take constant time.
func (s Scheme) Verify(stored, salt string, password []byte) bool {
	switch s.Name {
	case "bcrypt":
		// The salt is inside the stored hash (its first 29 characters).
		return bcrypt.CompareHashAndPassword([]byte(stored), password) == nil
	case "pbkdf2":
		dk, err := pbkdf2.Key(macs[s.MAC], string(password), []byte(salt), s.Iterations, s.KeyLen)
		if err != nil {
			return false
		}
		return equalHex(stored, dk)
	case "plain":
		return subtle.ConstantTimeCompare([]byte(stored), password) == 1
	}
	f, ok := digests[s.Name]
	if !ok {
		return false
	}
	h := f()
	if s.SaltPrefix {
		h.Write([]byte(salt))
	}
	h.Write(password)
	if s.SaltSuffix {
		h.Write([]byte(salt))
	}
	return equalHex(stored, h.Sum(nil))
}

// Hash returns the stored form of password under the scheme, as EMQX
// would store it.
func (s Scheme) Hash(password []byte, salt string) (string, error) {
	switch s.Name {
	case "bcrypt":
		b, err := bcrypt.GenerateFromPassword(password, bcrypt.DefaultCost)
		return string(b), err
	case "pbkdf2":
		dk, err := pbkdf2.Key(macs[s.MAC], string(password), []byte(salt), s.Iterations, s.KeyLen)
		return hex.EncodeToString(dk), err
	case "plain":
		return string(password), nil
	}
	f, ok := digests[s.Name]
	if !ok {
		return "", fmt.Errorf("%w: scheme %q", ErrFormat, s.Name)
	}
	h := f()
	if s.SaltPrefix {
		h.Write([]byte(salt))
	}
	h.Write(password)
	if s.SaltSuffix {
		h.Write([]byte(salt))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func equalHex(stored string, sum []byte) bool {
	want := hex.EncodeToString(sum)
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(stored)), []byte(want)) == 1
}

// Encoded forms of a users file entry:
//
//	$2a$, $2b$, $2y$...                     bcrypt
//	$argon2id$v=19$m=65536,t=3,p=2$SALT$KEY argon2id (PHC; unpadded base64)
//	PBKDF2$sha256$ITER$SALT$KEY             PBKDF2-SHA256 or -SHA512 (standard base64,
//	                                        as mosquitto-go-auth writes it)
//	SCHEME$SALT$HEX                         an EMQX form, e.g. sha256$$9f86...,
//	                                        salt,sha256$s1$..., pbkdf2,sha256,1000,20$s1$...
//
// Algorithms for Encode.
const (
	Bcrypt       = "bcrypt"
	Argon2id     = "argon2id"
	PBKDF2SHA256 = "pbkdf2-sha256"
	PBKDF2SHA512 = "pbkdf2-sha512"
)

// Params are the costs Encode uses.
type Params struct {
	BcryptCost       int    // bcrypt cost, 4..31
	Argon2Time       uint32 // argon2id passes
	Argon2MemoryKiB  uint32 // argon2id memory
	Argon2Threads    uint8  // argon2id parallelism
	PBKDF2Iterations int
}

// DefaultParams follow current OWASP guidance for password storage.
var DefaultParams = Params{
	BcryptCost:       10,
	Argon2Time:       2,
	Argon2MemoryKiB:  19 * 1024,
	Argon2Threads:    1,
	PBKDF2Iterations: 600000,
}

const (
	argonKeyLen = 32
	saltLen     = 16
)

// VerifyEncoded reports whether password matches a users file entry in
// one of the encoded forms.
func VerifyEncoded(encoded string, password []byte) (bool, error) {
	switch {
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		err := bcrypt.CompareHashAndPassword([]byte(encoded), password)
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w: bcrypt: %w", ErrFormat, err)
		}
		return true, nil
	case strings.HasPrefix(encoded, "$argon2id$"):
		return verifyArgon2id(encoded, password)
	case strings.HasPrefix(encoded, "PBKDF2$"):
		return verifyPBKDF2(encoded, password)
	}
	scheme, salt, digest, ok := cut3(encoded)
	if !ok {
		return false, fmt.Errorf("%w: entry is not bcrypt, argon2id, PBKDF2 or SCHEME$SALT$HASH", ErrFormat)
	}
	s, err := ParseScheme(scheme)
	if err != nil {
		return false, err
	}
	return s.Verify(digest, salt, password), nil
}

func cut3(s string) (a, b, c string, ok bool) {
	a, rest, ok1 := strings.Cut(s, "$")
	b, c, ok2 := strings.Cut(rest, "$")
	return a, b, c, ok1 && ok2
}

func verifyArgon2id(encoded string, password []byte) (bool, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[2] != "v=19" {
		return false, fmt.Errorf("%w: argon2id entry", ErrFormat)
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || t == 0 || p == 0 {
		return false, fmt.Errorf("%w: argon2id parameters %q", ErrFormat, f[3])
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(f[4])
	key, err2 := base64.RawStdEncoding.DecodeString(f[5])
	if err1 != nil || err2 != nil || len(key) == 0 {
		return false, fmt.Errorf("%w: argon2id salt or key", ErrFormat)
	}
	got := argon2.IDKey(password, salt, t, m, p, uint32(len(key)))
	return hmac.Equal(got, key), nil
}

func verifyPBKDF2(encoded string, password []byte) (bool, error) {
	// PBKDF2, mac, iterations, salt, key
	f := strings.Split(encoded, "$")
	if len(f) != 5 {
		return false, fmt.Errorf("%w: PBKDF2 entry", ErrFormat)
	}
	var h func() hash.Hash
	switch f[1] {
	case "sha256":
		h = sha256.New
	case "sha512":
		h = sha512.New
	default:
		return false, fmt.Errorf("%w: PBKDF2 hash %q", ErrFormat, f[1])
	}
	it, err := strconv.Atoi(f[2])
	if err != nil || it < 1 {
		return false, fmt.Errorf("%w: PBKDF2 iterations %q", ErrFormat, f[2])
	}
	key, err := base64.StdEncoding.DecodeString(f[4])
	if err != nil || len(key) == 0 {
		return false, fmt.Errorf("%w: PBKDF2 key", ErrFormat)
	}
	// The salt is base64, as mosquitto-go-auth writes it; a salt that is
	// not base64 is used as it is (its utf-8 salt encoding).
	salt, err := base64.StdEncoding.DecodeString(f[3])
	if err != nil {
		salt = []byte(f[3])
	}
	got, err := pbkdf2.Key(h, string(password), salt, it, len(key))
	if err != nil {
		return false, fmt.Errorf("passhash: pbkdf2: %w", err)
	}
	return hmac.Equal(got, key), nil
}

// Encode hashes password with a fresh random salt in one of the encoded
// forms: Bcrypt, Argon2id, PBKDF2SHA256 or PBKDF2SHA512, at DefaultParams.
func Encode(algorithm string, password []byte) (string, error) {
	return EncodeParams(algorithm, password, DefaultParams)
}

// EncodeParams is Encode with explicit costs.
func EncodeParams(algorithm string, password []byte, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("passhash: salt: %w", err)
	}
	switch algorithm {
	case Bcrypt:
		b, err := bcrypt.GenerateFromPassword(password, p.BcryptCost)
		if err != nil {
			return "", fmt.Errorf("passhash: bcrypt: %w", err)
		}
		return string(b), nil
	case Argon2id:
		if p.Argon2Time == 0 || p.Argon2Threads == 0 || p.Argon2MemoryKiB < 8*uint32(p.Argon2Threads) {
			return "", fmt.Errorf("%w: argon2id parameters", ErrFormat)
		}
		key := argon2.IDKey(password, salt, p.Argon2Time, p.Argon2MemoryKiB, p.Argon2Threads, argonKeyLen)
		return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.Argon2MemoryKiB, p.Argon2Time, p.Argon2Threads,
			base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
	case PBKDF2SHA256, PBKDF2SHA512:
		h, name, n := sha256.New, "sha256", 32
		if algorithm == PBKDF2SHA512 {
			h, name, n = sha512.New, "sha512", 64
		}
		s := base64.StdEncoding.EncodeToString(salt)
		key, err := pbkdf2.Key(h, string(password), salt, p.PBKDF2Iterations, n)
		if err != nil {
			return "", fmt.Errorf("passhash: pbkdf2: %w", err)
		}
		return fmt.Sprintf("PBKDF2$%s$%d$%s$%s", name, p.PBKDF2Iterations, s, base64.StdEncoding.EncodeToString(key)), nil
	}
	return "", fmt.Errorf("%w: algorithm %q (want bcrypt, argon2id, pbkdf2-sha256 or pbkdf2-sha512)", ErrFormat, algorithm)
}
