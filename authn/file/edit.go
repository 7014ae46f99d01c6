package file

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/mqgate/mqgate/store"
)

// ErrNoUser is returned by DeleteUser when the file does not list the user.
var ErrNoUser = errors.New("authn/file: no such user")

// SetUser writes the entry of user (adding or replacing it) in the users
// file at path, keeping every other line as it is. With create the file
// is started afresh. The file is replaced atomically (a temporary file
// renamed over it), so a running backend never reads half of it.
func SetUser(path, user, encoded string, create bool) error {
	if user == "" || strings.ContainsAny(user, ":\r\n") || strings.HasPrefix(user, "#") {
		return fmt.Errorf("%w: username %q (it may not be empty, hold ':' or a newline, or start with #)", ErrSyntax, user)
	}
	var lines []string
	if !create {
		var err error
		if lines, err = readLines(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	entry := user + ":" + encoded
	found := false
	for i, l := range lines {
		if u, _, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && u == user && !strings.HasPrefix(u, "#") {
			lines[i] = entry
			found = true
		}
	}
	if !found {
		lines = append(lines, entry)
	}
	return writeLines(path, lines)
}

// DeleteUser removes user's entry from the users file at path.
func DeleteUser(path, user string) error {
	lines, err := readLines(path)
	if err != nil {
		return err
	}
	kept := lines[:0]
	for _, l := range lines {
		if u, _, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && u == user {
			continue
		}
		kept = append(kept, l)
	}
	if len(kept) == len(lines) {
		return fmt.Errorf("%w: %q", ErrNoUser, user)
	}
	return writeLines(path, kept)
}

func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authn/file: %w", err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

func writeLines(path string, lines []string) error {
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	if _, err := Parse(buf.Bytes()); err != nil {
		return err
	}
	if err := store.WriteFileAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("authn/file: %w", err)
	}
	return nil
}
