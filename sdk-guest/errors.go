package guest

import (
	"context"
	"errors"
	"os"
	"strconv"

	"github.com/wapr-dev/wapr/abi"
)

const invalidArgument = abi.StatusInvalidArgument

// Error is an error with an ABI status: what a component returns to make
// the host see something other than StatusInternal. The SDK sends Status in
// the export's result and Message and Key in the abi.ErrorRecord.
//
// Use the constructors (NotFound, ETagMismatch, …) or build one directly.
// Wrap a cause in Err to keep it for errors.Is/As; it is appended to the
// message.
type Error struct {
	Status  abi.Status
	Message string // for people; the status name when empty
	Key     string // the state key concerned, if any
	Err     error  // the cause, if any
}

// Error returns the message, then the cause.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Status.String()
	}
	if e.Key != "" {
		msg += " (key " + strconv.Quote(e.Key) + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// record is the message part of the ErrorRecord: the key travels apart.
func (e *Error) record() abi.ErrorRecord {
	msg := e.Message
	if msg == "" {
		msg = e.Status.String()
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return abi.ErrorRecord{Message: msg, Key: e.Key}
}

// NotFound reports that key does not exist (StatusNotFound).
func NotFound(key string) *Error {
	return &Error{Status: abi.StatusNotFound, Message: "not found", Key: key}
}

// ETagMismatch reports an optimistic-concurrency conflict on key: the ETag
// given does not match, or a first-write found the key present
// (StatusETagMismatch).
func ETagMismatch(key string) *Error {
	return &Error{Status: abi.StatusETagMismatch, Message: "etag mismatch", Key: key}
}

// ETagInvalid reports an ETag the store cannot parse (StatusETagInvalid).
func ETagInvalid(key string) *Error {
	return &Error{Status: abi.StatusETagInvalid, Message: "invalid etag", Key: key}
}

// InvalidArgument reports a request the component cannot serve as asked
// (StatusInvalidArgument).
func InvalidArgument(msg string) *Error {
	return &Error{Status: abi.StatusInvalidArgument, Message: msg}
}

// NotSupported reports an operation or option the component does not offer
// (StatusNotSupported).
func NotSupported(msg string) *Error {
	return &Error{Status: abi.StatusNotSupported, Message: msg}
}

// Unavailable reports that the backend cannot be reached; a retry may help
// (StatusUnavailable).
func Unavailable(err error) *Error {
	return &Error{Status: abi.StatusUnavailable, Message: "backend unavailable", Err: err}
}

// Deadline reports that the operation ran out of time (StatusDeadline).
func Deadline(err error) *Error {
	return &Error{Status: abi.StatusDeadline, Message: "deadline exceeded", Err: err}
}

// TooLarge reports a value or response over a limit (StatusTooLarge).
func TooLarge(msg string) *Error {
	return &Error{Status: abi.StatusTooLarge, Message: msg}
}

// Internal reports anything else (StatusInternal); returning err itself has
// the same effect.
func Internal(err error) *Error {
	return &Error{Status: abi.StatusInternal, Err: err, Message: "internal error"}
}

// StatusOf returns the status the SDK reports for err:
//
//   - nil: StatusOK;
//   - an *Error anywhere in the chain: its Status (StatusInternal if it
//     says OK);
//   - a timeout (os.ErrDeadlineExceeded, context.DeadlineExceeded, or an
//     error with a Timeout() bool method reporting true, such as a socket
//     deadline from sdk-guest/hostnet): StatusDeadline;
//   - anything else: StatusInternal.
func StatusOf(err error) abi.Status {
	if err == nil {
		return abi.StatusOK
	}
	if e, ok := errors.AsType[*Error](err); ok {
		if e.Status == abi.StatusOK {
			return abi.StatusInternal
		}
		return e.Status
	}
	if isTimeout(err) {
		return abi.StatusDeadline
	}
	return abi.StatusInternal
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	t, ok := errors.AsType[interface {
		error
		Timeout() bool
	}](err)
	return ok && t.Timeout()
}

// recordOf returns the ErrorRecord the SDK sends for err.
func recordOf(err error) abi.ErrorRecord {
	if e, ok := errors.AsType[*Error](err); ok && e == err {
		return e.record()
	}
	rec := abi.ErrorRecord{Message: err.Error()}
	if e, ok := errors.AsType[*Error](err); ok {
		rec.Key = e.Key
	}
	return rec
}
