package passhash

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestSchemes(t *testing.T) {
	pw := []byte("public")
	tests := []struct {
		scheme, stored, salt string
	}{
		// The EMQX docs' sample user: emqx / public as sha256 hex.
		{"sha256", "efa1f375d76194fa51a3556a97e641e61685f914d446979da50a551a4333ffd7", ""},
		{"sha256", "EFA1F375D76194FA51A3556A97E641E61685F914D446979DA50A551A4333FFD7", ""},
		{"plain", "public", ""},
		{"md5", "4c9184f37cff01bcdc32dc486ec36961", ""},
		{"sha", "61c9b2b17db77a27841bbeeabff923448b0f6388", ""},
		{"salt,sha256", hexSum("s1public"), "s1"},
		{"sha256,salt", hexSum("publics1"), "s1"},
		// PBKDF2-HMAC-SHA256, 1000 iterations, 20 bytes, salt "s1".
		{"pbkdf2,sha256,1000,20", "", "s1"},
		{"bcrypt", "", ""},
	}
	for _, tt := range tests {
		s, err := ParseScheme(tt.scheme)
		if err != nil {
			t.Fatalf("%s: %v", tt.scheme, err)
		}
		stored := tt.stored
		if tt.scheme == "bcrypt" {
			// A low cost keeps the test fast under the race detector.
			b, err := bcrypt.GenerateFromPassword(pw, bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			stored = string(b)
		}
		if stored == "" {
			if stored, err = s.Hash(pw, tt.salt); err != nil {
				t.Fatal(err)
			}
		} else if h, err := s.Hash(pw, tt.salt); tt.scheme != "bcrypt" && (err != nil || !strings.EqualFold(h, stored)) {
			t.Errorf("%s: Hash = %s, want %s", tt.scheme, h, stored)
		}
		if !s.Verify(stored, tt.salt, pw) {
			t.Errorf("%s: the right password failed", tt.scheme)
		}
		if s.Verify(stored, tt.salt, []byte("Public")) {
			t.Errorf("%s: a wrong password passed", tt.scheme)
		}
		if tt.salt != "" && s.Verify(stored, "s2", pw) {
			t.Errorf("%s: a wrong salt passed", tt.scheme)
		}
	}
	for _, bad := range []string{"", "sha3", "salt,salt", "pbkdf2,sha256,x,20", "pbkdf2,whirlpool,1,1", "pbkdf2,sha256,0,20"} {
		if _, err := ParseScheme(bad); err == nil {
			t.Errorf("ParseScheme(%q) accepted it", bad)
		}
	}
}

// cheap are real but low costs, so that tests under the race detector
// stay fast.
var cheap = Params{BcryptCost: 4, Argon2Time: 1, Argon2MemoryKiB: 64, Argon2Threads: 1, PBKDF2Iterations: 100}

func hexSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestEncoded(t *testing.T) {
	pw := []byte("hunter2")
	for _, alg := range []string{Bcrypt, Argon2id, PBKDF2SHA256, PBKDF2SHA512} {
		enc, err := EncodeParams(alg, pw, cheap)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := VerifyEncoded(enc, pw)
		if err != nil || !ok {
			t.Errorf("%s: right password: %v %v (%s)", alg, ok, err, enc)
		}
		if ok, err := VerifyEncoded(enc, []byte("hunter3")); ok || err != nil {
			t.Errorf("%s: wrong password: %v %v", alg, ok, err)
		}
		again, _ := EncodeParams(alg, pw, cheap)
		if again == enc {
			t.Errorf("%s: two encodings are equal: no fresh salt", alg)
		}
	}
	emqx := []struct {
		enc  string
		want bool
	}{
		{"sha256$$" + hexSum("hunter2"), true},
		{"salt,sha256$ab$" + hexSum("abhunter2"), true},
		{"plain$$hunter2", true},
		{"plain$$hunter3", false},
	}
	for _, tt := range emqx {
		if ok, err := VerifyEncoded(tt.enc, pw); ok != tt.want || err != nil {
			t.Errorf("%s: %v %v", tt.enc, ok, err)
		}
	}
	for _, bad := range []string{"nothing", "$argon2id$v=18$m=1,t=1,p=1$AA$AA", "PBKDF2$md5$1$a$b", "sha3$$00", "$2y$bad"} {
		if _, err := VerifyEncoded(bad, pw); err == nil {
			t.Errorf("VerifyEncoded(%q) accepted it", bad)
		}
	}
	if _, err := Encode("md5", pw); err == nil {
		t.Error("Encode accepted md5")
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{Bcrypt, Argon2id, PBKDF2SHA512} {
		enc, _ := Encode(alg, []byte("pw"))
		b.Run(alg, func(b *testing.B) {
			for b.Loop() {
				_, _ = VerifyEncoded(enc, []byte("pw"))
			}
		})
	}
}
