package keys

import (
	"errors"
	"fmt"
	"time"
)

// Domain errors. pkg/httpapi maps each to one HTTP status and error code.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrForbidden    = errors.New("forbidden")
	ErrUnauthorized = errors.New("unauthorized")
)

// InvalidError is a bad input: it names the field and says what is wrong.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ConflictError is an ErrConflict with a message for the caller.
type ConflictError struct{ Message string }

func (e *ConflictError) Error() string { return e.Message }
func (e *ConflictError) Unwrap() error { return ErrConflict }

// ForbiddenError is an ErrForbidden with a message for the caller.
type ForbiddenError struct{ Message string }

func (e *ForbiddenError) Error() string { return e.Message }
func (e *ForbiddenError) Unwrap() error { return ErrForbidden }

// ErrCallerInactive is a change refused because the calling key was revoked
// or expired after it was authorized.
var ErrCallerInactive = errors.New("the calling key is no longer active")

// ErrUnavailable is a failure of the store that a retry may cure: DynamoDB
// throttled, timed out or could not be reached.
var ErrUnavailable = errors.New("store unavailable")

// UnauthorizedError is an ErrUnauthorized with a message for the caller.
type UnauthorizedError struct{ Message string }

func (e *UnauthorizedError) Error() string { return e.Message }
func (e *UnauthorizedError) Unwrap() error { return ErrUnauthorized }

// RateLimitedError refuses a request its key's rate limits or credits do
// not cover now; RetryAfter is when to try again, 0 when unknown.
type RateLimitedError struct {
	Message    string
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string { return e.Message }
