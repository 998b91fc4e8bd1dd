package registry

import (
	"context"
	"errors"
	"strings"
)

// Code is the kind of a registry error: the C library's registry_status.
type Code int

// The error kinds, equal to the C library's registry_status values.
const (
	// CodeInvalidArgument: something unusable was passed (empty key, n = 0,
	// invalid UTF-8, a closed handle, a malformed address…).
	CodeInvalidArgument Code = 1
	// CodeNotFound: the group has no members, or the thing does not exist.
	CodeNotFound Code = 2
	// CodeAlreadyExists: the id or resource is already taken.
	CodeAlreadyExists Code = 3
	// CodeUnavailable: no registry could be reached, or the handle is stopped.
	CodeUnavailable Code = 4
	// CodeTimeout: the operation did not finish within its deadline.
	CodeTimeout Code = 5
	// CodeLimitExceeded: a size, count or rate limit was exceeded.
	CodeLimitExceeded Code = 6
	// CodeInternal: a bug or an unexpected state in the library.
	CodeInternal Code = 7
	// CodePanic: the library panicked; the call was abandoned.
	CodePanic Code = 8
	// CodeCancelled: the call's context was cancelled.
	CodeCancelled Code = 9
)

var codeNames = map[Code]string{
	CodeInvalidArgument: "invalid argument",
	CodeNotFound:        "not found",
	CodeAlreadyExists:   "already exists",
	CodeUnavailable:     "unavailable",
	CodeTimeout:         "timeout",
	CodeLimitExceeded:   "limit exceeded",
	CodeInternal:        "internal error",
	CodePanic:           "panic",
	CodeCancelled:       "cancelled",
}

// String names the kind ("not found").
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return "unknown error"
}

// Error is every error this package returns: a kind, the operation and
// the library's message. Compare kinds with errors.Is(err,
// registry.ErrNotFound). Error() reads e.g.
// "registry: match: not found: group \"web\" has no members: none has registered".
type Error struct {
	// Code is the kind of error.
	Code Code
	// Op is the operation that failed, as this package names it ("match",
	// "view match", "new client", "register", ...); empty for a call on a
	// closed handle.
	Op string
	// Message is the library's description, e.g.
	// "not found: group \"web\" has no members: none has registered", or
	// "unavailable: no registry reachable: tried 127.0.0.1:9800 (connection
	// refused); is a registry-server running there? (its gRPC port is its --addr)".
	Message string
	// cause is the context error behind a CodeCancelled or CodeTimeout
	// error of a call whose context ended (see Unwrap).
	cause error
}

// Error returns "registry: ", the operation and the message.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code.String()
	}
	if e.Op != "" {
		return "registry: " + e.Op + ": " + msg
	}
	return "registry: " + msg
}

// Unwrap returns the context's error (context.Canceled or
// context.DeadlineExceeded) when the call's context ended it, so that
// errors.Is(err, context.Canceled) works; nil otherwise.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error of the same kind, so that
// errors.Is(err, ErrNotFound) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinel errors, one per kind, for errors.Is.
var (
	// ErrInvalidArgument matches errors of kind CodeInvalidArgument.
	ErrInvalidArgument = &Error{Code: CodeInvalidArgument}
	// ErrNotFound matches errors of kind CodeNotFound.
	ErrNotFound = &Error{Code: CodeNotFound}
	// ErrAlreadyExists matches errors of kind CodeAlreadyExists.
	ErrAlreadyExists = &Error{Code: CodeAlreadyExists}
	// ErrUnavailable matches errors of kind CodeUnavailable.
	ErrUnavailable = &Error{Code: CodeUnavailable}
	// ErrTimeout matches errors of kind CodeTimeout.
	ErrTimeout = &Error{Code: CodeTimeout}
	// ErrLimitExceeded matches errors of kind CodeLimitExceeded.
	ErrLimitExceeded = &Error{Code: CodeLimitExceeded}
	// ErrInternal matches errors of kind CodeInternal.
	ErrInternal = &Error{Code: CodeInternal}
	// ErrPanic matches errors of kind CodePanic.
	ErrPanic = &Error{Code: CodePanic}
	// ErrCancelled matches errors of kind CodeCancelled.
	ErrCancelled = &Error{Code: CodeCancelled}
)

// failed names the Go operation op in an error from the C library, in
// place of the C function name that prefixes the library's message
// ("registry_client_match: ..."): Go errors carry no C symbol names.
func failed(op string, err error) error {
	e, ok := err.(*Error)
	if !ok || e == nil {
		return err
	}
	msg := e.Message
	if strings.HasPrefix(msg, "registry_") {
		if i := strings.Index(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
	}
	return &Error{Code: e.Code, Op: op, Message: msg}
}

// closed is the error of a call on a closed handle.
func closed(what string) error {
	return &Error{Code: CodeInvalidArgument, Message: what + " is closed"}
}

// contextError is the error of a call that its context ended: kind
// CodeTimeout for a deadline, CodeCancelled otherwise, wrapping ctxErr.
func contextError(op string, ctxErr error) error {
	code := CodeCancelled
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		code = CodeTimeout
	}
	return &Error{Code: code, Op: op, Message: ctxErr.Error(), cause: ctxErr}
}
