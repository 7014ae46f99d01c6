package config

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every Error returned by Load and Parse wraps one of them,
// so callers can classify problems with errors.Is.
var (
	// ErrSyntax is a line that is not a comment, blank, or key = value.
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownKey is a key that is not in the schema.
	ErrUnknownKey = errors.New("unknown key")
	// ErrInvalidValue is a value that its key's kind or range rejects.
	ErrInvalidValue = errors.New("invalid value")
	// ErrDuplicateKey is a key set twice in one source.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrSchema is a schema that contradicts itself; it is a programming
	// error, not a user error.
	ErrSchema = errors.New("invalid schema")
)

// Error is one problem found in a config source. Load and Parse report every
// problem they find, as Errors joined with errors.Join.
type Error struct {
	Source string // where the problem is: "mqgate.conf:12" or "env MQGATE__X"
	Key    string // the key whose value is wrong; empty when the key itself is wrong
	Err    error  // what is wrong; wraps ErrSyntax, ErrUnknownKey, ErrInvalidValue or ErrDuplicateKey
}

// Error formats the problem as "source: key: what", or "source: what" when
// Key is empty.
func (e *Error) Error() string {
	if e.Key == "" {
		return e.Source + ": " + e.Err.Error()
	}
	return e.Source + ": " + e.Key + ": " + e.Err.Error()
}

// Unwrap returns the error that says what is wrong.
func (e *Error) Unwrap() error { return e.Err }

// detail is an error message that belongs to one of the sentinel errors
// without repeating its text.
type detail struct {
	sentinel error
	msg      string
}

func (d *detail) Error() string { return d.msg }

func (d *detail) Unwrap() error { return d.sentinel }

// detailf builds an error message classified as sentinel.
func detailf(sentinel error, format string, a ...any) error {
	return &detail{sentinel: sentinel, msg: fmt.Sprintf(format, a...)}
}

// invalidf builds an ErrInvalidValue message.
func invalidf(format string, a ...any) error {
	return detailf(ErrInvalidValue, format, a...)
}
