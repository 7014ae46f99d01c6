package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/authn/passhash"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cheap are real but low hashing costs, so tests stay fast under -race.
var cheap = passhash.Params{BcryptCost: 4, Argon2Time: 1, Argon2MemoryKiB: 64, Argon2Threads: 1, PBKDF2Iterations: 100}

func enc(t *testing.T, alg, pw string) string {
	t.Helper()
	s, err := passhash.EncodeParams(alg, []byte(pw), cheap)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func id(user, pw string) access.Identity {
	return access.Identity{ClientID: "c", Username: user, UsernameSet: true, Password: []byte(pw)}
}

func TestAuthenticate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	content := "# users\n\n" +
		"bc:" + enc(t, passhash.Bcrypt, "pw-bc") + "\n" +
		"ar:" + enc(t, passhash.Argon2id, "pw-ar") + "\n" +
		"p2:" + enc(t, passhash.PBKDF2SHA256, "pw-p2") + "\n" +
		"p5:" + enc(t, passhash.PBKDF2SHA512, "pw-p5") + "\n" +
		// EMQX sample user emqx/public as sha256 hex.
		"emqx:sha256$$efa1f375d76194fa51a3556a97e641e61685f914d446979da50a551a4333ffd7\n" +
		"broken:nonsense\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	tests := []struct {
		user, pw string
		want     access.Verdict
	}{
		{"bc", "pw-bc", access.Allow},
		{"bc", "pw-ar", access.Deny},
		{"ar", "pw-ar", access.Allow},
		{"ar", "", access.Deny},
		{"p2", "pw-p2", access.Allow},
		{"p5", "pw-p5", access.Allow},
		{"p5", "pw-p2", access.Deny},
		{"emqx", "public", access.Allow},
		{"emqx", "private", access.Deny},
		{"broken", "x", access.Deny},
		{"stranger", "x", access.Ignore},
	}
	for _, tt := range tests {
		if d := b.Authenticate(context.Background(), id(tt.user, tt.pw)); d.Verdict != tt.want || d.Reason == "" {
			t.Errorf("%s/%s: got %+v, want %v", tt.user, tt.pw, d, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{"nocolon\n", ":hash\n", "u:\n", "u:a\nu:b\n"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
	if _, err := New(Options{Path: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("New accepted a missing file")
	}
}

// TestReloadOnChange checks that the backend picks up an edit made by
// replacing the file (as SetUser and most editors do) and keeps the last
// good users when the new file is malformed.
func TestReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	if err := SetUser(path, "a", enc(t, passhash.Bcrypt, "one"), true); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Path: path, Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	if d := b.Authenticate(ctx, id("a", "one")); d.Verdict != access.Allow {
		t.Fatalf("before: %+v", d)
	}
	loads := b.loads.Load()
	if err := SetUser(path, "a", enc(t, passhash.Bcrypt, "two"), false); err != nil {
		t.Fatal(err)
	}
	if err := SetUser(path, "b", enc(t, passhash.Argon2id, "three"), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return b.Authenticate(ctx, id("b", "three")).Verdict == access.Allow
	})
	if d := b.Authenticate(ctx, id("a", "one")); d.Verdict != access.Deny {
		t.Fatalf("old password after the change: %+v", d)
	}
	if b.loads.Load() <= loads {
		t.Fatal("no reload counted")
	}
	// A malformed file keeps the previous users.
	if err := os.WriteFile(path, []byte("garbage line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(); err == nil {
		t.Fatal("Reload accepted a malformed file")
	}
	if d := b.Authenticate(ctx, id("a", "two")); d.Verdict != access.Allow {
		t.Fatalf("after a bad edit: %+v", d)
	}
	// Deleting a user.
	if err := SetUser(path, "a", enc(t, passhash.Bcrypt, "two"), true); err != nil {
		t.Fatal(err)
	}
	if err := DeleteUser(path, "a"); err != nil {
		t.Fatal(err)
	}
	if err := DeleteUser(path, "a"); err == nil {
		t.Fatal("DeleteUser removed a missing user")
	}
	waitFor(t, func() bool { return b.Authenticate(ctx, id("a", "two")).Verdict == access.Ignore })
}

func TestSetUserRejectsBadNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	for _, u := range []string{"", "a:b", "a\nb", "#x"} {
		if err := SetUser(path, u, "plain$$x", false); err == nil {
			t.Errorf("SetUser accepted %q", u)
		}
	}
}

// waitFor polls cond until it holds or 5 s pass (a deadline for a file
// event, not a timing assertion).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
