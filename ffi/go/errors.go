package registry

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
}

// String names the kind ("not found").
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return "unknown error"
}

// Error is every error this package returns: a kind and the library's
// message. Compare kinds with errors.Is(err, registry.ErrNotFound).
type Error struct {
	// Code is the kind of error.
	Code Code
	// Message is the library's description, e.g.
	// "registry_view_match: not found: group \"web\" has no members".
	Message string
}

// Error returns the message.
func (e *Error) Error() string {
	if e.Message == "" {
		return "registry: " + e.Code.String()
	}
	return "registry: " + e.Message
}

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
)

// closed is the error of a call on a closed handle.
func closed(what string) error {
	return &Error{Code: CodeInvalidArgument, Message: what + " is closed"}
}
