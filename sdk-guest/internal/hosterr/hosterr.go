// Package hosterr turns the negative results of wapr host functions
// (abi.ErrAgain … abi.ErrRefused) into Go errors shared by hostnet and
// hosthttp, so errors.Is works the same whichever package returned them.
package hosterr

import (
	"os"
	"strconv"

	"github.com/wapr-dev/wapr/abi"
)

// Code is a negative result of a wapr host function, as an error. It is
// comparable, so the exported sentinels of hostnet and hosthttp are Code
// values and errors.Is matches them.
type Code int32

// The codes as errors.
const (
	Again   = Code(abi.ErrAgain)
	Closed  = Code(abi.ErrClosed)
	Denied  = Code(abi.ErrDenied)
	Timeout = Code(abi.ErrTimeout)
	Invalid = Code(abi.ErrInvalid)
	IO      = Code(abi.ErrIO)
	Limit   = Code(abi.ErrLimit)
	Refused = Code(abi.ErrRefused)
)

// Error describes the code.
func (c Code) Error() string {
	switch c {
	case Again:
		return "no data available yet"
	case Closed:
		return "use of closed network connection"
	case Denied:
		return "destination not allowed by the host (not on the component's allow-list)"
	case Timeout:
		return "i/o timeout"
	case Invalid:
		return "invalid argument"
	case IO:
		return "connection failed or reset"
	case Limit:
		return "host limit exceeded (open handles or size)"
	case Refused:
		return "connection refused or host name does not resolve"
	}
	return "host error " + strconv.Itoa(int(c))
}

// Timeout reports whether the code is a deadline (net.Error).
func (c Code) Timeout() bool { return c == Timeout }

// Temporary reports Again and Timeout as temporary (net.Error).
func (c Code) Temporary() bool { return c == Again || c == Timeout }

// Is makes Timeout match os.ErrDeadlineExceeded, as the standard
// library's deadline errors do. (hostnet reports Closed as net.ErrClosed
// itself; this package does not import net, which would add ~340 KB to
// modules that only use hosthttp.)
func (c Code) Is(target error) bool {
	return target == os.ErrDeadlineExceeded && c == Timeout
}

// Error is a failed host call: what was attempted, on what, and the code
// (plus, in native builds, the standard library's error behind it).
type Error struct {
	Op     string // e.g. "hosthttp: GET"
	Target string // e.g. the URL or address
	Code   Code
	Err    error // the cause, if any
}

func (e *Error) Error() string {
	s := e.Op
	if e.Target != "" {
		s += " " + e.Target
	}
	s += ": " + e.Code.Error()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the code and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Code}
	}
	return []error{e.Code, e.Err}
}

// Timeout reports whether the code is a deadline.
func (e *Error) Timeout() bool { return e.Code.Timeout() }
