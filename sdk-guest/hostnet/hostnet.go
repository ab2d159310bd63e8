// Package hostnet gives a component outbound TCP through the host
// (wapr_sock_v1), as a standard net.Conn that existing pure-Go clients
// accept through their dialer hooks:
//
//	conn, err := hostnet.Dial(ctx, "tcp", "redis:6379")
//
// The package is named hostnet, not net, so it never shadows the standard
// library's net package, whose net.Conn it returns.
//
// # What the host does
//
// The host resolves the name, checks the destination against the
// component's allow-list after resolution (the endpoints its metadata names
// plus what the operator grants), applies the call's deadline, and, for
// DialTLS, runs TLS itself with its own roots: the guest sees plaintext and
// carries no crypto code. A destination not on the allow-list fails with an
// error matching ErrDenied. Connections belong to the instance and survive
// from one call to the next; the host caps how many an instance holds.
//
// # Why reads are non-blocking
//
// A Go guest has one thread. If Read blocked inside the host, every
// goroutine of the instance would freeze with it, and a client that reads on
// one goroutine while another writes (net/http, pub/sub readers) would
// deadlock. So Read asks the host for buffered bytes without blocking; when
// there are none it yields (runtime.Gosched) a few times so other goroutines
// can run, then waits in the host for at most a few milliseconds (1 ms,
// doubling up to 10 ms while nothing arrives; the wait ends as soon as data
// arrives), and tries again. When the caller is the instance's only
// goroutine it skips the yields, which cost microseconds each in a Go guest
// and could not help anyone (a pending time.AfterFunc then fires at the
// next yield, such as the host's wapr_tick). Read honours
// SetReadDeadline and SetDeadline: past the deadline it fails with an error
// for which errors.Is(err, os.ErrDeadlineExceeded) holds and whose
// Timeout() is true, as the standard library's connections do. Write blocks
// in the host until everything is written or the call's deadline passes.
//
// # Native builds
//
// Outside Wasm (go test), Dial and DialTLS use the standard library's
// net.Dialer and crypto/tls, so components run natively under
// sdk-guest/testkit. There is no allow-list then.
//
// A Conn is safe for concurrent use by multiple goroutines, as net.Conn
// requires.
package hostnet

import "github.com/wapr-dev/wapr/sdk-guest/internal/hosterr"

// Errors a dial or a connection may fail with; test with errors.Is. A
// deadline matches os.ErrDeadlineExceeded and a closed connection
// net.ErrClosed instead.
var (
	ErrDenied  error = hosterr.Denied  // the destination is not on the allow-list
	ErrRefused error = hosterr.Refused // connection refused, or the name does not resolve
	ErrIO      error = hosterr.IO      // the connection failed or was reset
	ErrLimit   error = hosterr.Limit   // too many open sockets for the instance
)
