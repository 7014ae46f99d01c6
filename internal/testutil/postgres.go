package testutil

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq" // the PostgreSQL driver the backends use
)

// pgDSN is the server the package's tests use, set by RunWithPostgres.
var pgDSN string

// RunWithPostgres runs the tests of a package with a real PostgreSQL
// server: the one PGTEST_DSN names, or else a throwaway cluster made with
// Debian's initdb in a temporary directory, listening on 127.0.0.1 on a free
// port, removed afterwards. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testutil.RunWithPostgres(m)) }
func RunWithPostgres(m *testing.M) int {
	if dsn := os.Getenv("PGTEST_DSN"); dsn != "" {
		pgDSN = dsn
		return m.Run()
	}
	dsn, stop, err := startPostgres()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testutil: cannot start PostgreSQL (install Debian's postgresql, or set PGTEST_DSN): %v\n", err)
		return 1
	}
	pgDSN = dsn
	code := m.Run()
	stop()
	return code
}

// PostgresDB creates a fresh, empty database on the test server and returns
// its DSN (lib/pq URL form, sslmode=disable). The database is dropped when
// the test ends.
func PostgresDB(t testing.TB) string {
	t.Helper()
	if pgDSN == "" {
		t.Fatal("testutil.PostgresDB needs TestMain to call testutil.RunWithPostgres")
	}
	admin, err := sql.Open("postgres", pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := "t_" + hex.EncodeToString(r[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("postgres", pgDSN)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	return withDatabase(pgDSN, name)
}

// withDatabase replaces the database of a URL-form DSN.
func withDatabase(dsn, name string) string {
	q := ""
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		dsn, q = dsn[:i], dsn[i:]
	}
	if i := strings.LastIndexByte(dsn, '/'); i > len("postgres://") {
		dsn = dsn[:i]
	}
	return dsn + "/" + name + q
}

// startPostgres makes and starts a throwaway cluster.
func startPostgres() (dsn string, stop func(), err error) {
	bin, err := pgBinDir()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "mqgate-pg-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	data := filepath.Join(dir, "data")
	// initdb refuses to run as root: run the server as the postgres user.
	asUser := func(name string, args ...string) *exec.Cmd {
		if os.Geteuid() == 0 {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
		}
		return exec.Command(name, args...)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			cleanup()
			return "", nil, fmt.Errorf("running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	if out, err := asUser(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		cleanup()
		return "", nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", port, dir)
	logf := filepath.Join(dir, "pg.log")
	if out, err := asUser(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", logf, "-w", "-t", "60", "-o", opts, "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(logf)
		cleanup()
		return "", nil, fmt.Errorf("pg_ctl start: %w: %s %s", err, out, log)
	}
	stop = func() {
		_ = asUser(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop").Run()
		cleanup()
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), stop, nil
}

// pgBinDir finds Debian's PostgreSQL server binaries.
func pgBinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", fmt.Errorf("no /usr/lib/postgresql/*/bin/initdb")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
