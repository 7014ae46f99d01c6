package testutil

import (
	"database/sql"
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(RunWithPostgres(m)) }

// TestPostgresDB checks that each test gets its own working database.
func TestPostgresDB(t *testing.T) {
	a, b := PostgresDB(t), PostgresDB(t)
	if a == b {
		t.Fatalf("two tests share a database: %s", a)
	}
	db, err := sql.Open("postgres", a)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE x (id int); INSERT INTO x VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM x").Scan(&n); err != nil || n != 1 {
		t.Fatalf("count = %d, %v", n, err)
	}
}
