// Package errdefs holds weft's error classes. Domain packages create errors
// with a class and a user-facing message; the plugin layer maps the class to
// an HTTP status, and dockerd shows the message exactly as written.
package errdefs

import (
	"errors"
	"fmt"
)

// Error classes, matched with errors.Is.
var (
	// Invalid marks input the user can fix: a bad option, subnet or address.
	Invalid = errors.New("invalid")
	// Conflict marks input that clashes with existing state.
	Conflict = errors.New("conflict")
	// Exhausted marks a request that cannot be met because everything is in use.
	Exhausted = errors.New("exhausted")
	// NotFound marks a request naming an object weft does not have.
	NotFound = errors.New("not found")
)

// classError carries a message whose text is exactly what the user reads
// (no "invalid: " prefix) while still matching its class.
type classError struct {
	class error
	msg   string
}

func (e *classError) Error() string { return e.msg }
func (e *classError) Unwrap() error { return e.class }

// Errorf formats a message of the given class. %w is not supported: the
// message is for people, the class is for code.
func Errorf(class error, format string, args ...any) error {
	return &classError{class: class, msg: fmt.Sprintf(format, args...)}
}
