package hostnet

import (
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/sdk-guest/internal/hosterr"
)

// The cooperative wait of Read: yields first (only when other goroutines
// exist: a yield costs microseconds in a Go guest), then host waits growing
// from minWait to maxWait while nothing arrives.
const (
	yieldsBeforeWait = 3
	minWait          = time.Millisecond
	maxWait          = 10 * time.Millisecond
)

// sockFuncs is the host socket API (wapr_sock_v1) plus the scheduler and
// clock hooks Read uses; the wasip1 build fills it with the host imports,
// tests with fakes.
type sockFuncs struct {
	read   func(h int32, p []byte) int32 // n > 0, 0 at EOF, abi.ErrAgain, or another negative code
	write  func(h int32, p []byte) int32 // len(p) or a negative code
	wait   func(h int32, timeoutMillis uint32) int32
	close  func(h int32) int32
	yield  func()
	others func() bool          // whether goroutines other than the caller exist
	since  func() time.Duration // the time since epoch, on the monotonic clock
}

// epoch is what deadlines are measured from: converting a deadline from
// time.Now().Add(…) needs no clock read, and reading the time since epoch
// is one host clock call where time.Now is two.
var epoch = time.Now()

// noDeadline marks a deadline that is not set.
const noDeadline = math.MaxInt64

// conn is a net.Conn over a host socket handle.
type conn struct {
	sys          *sockFuncs
	h            int32
	laddr, raddr net.Addr
	readDL       atomic.Int64 // nanoseconds since epoch; noDeadline: none
	writeDL      atomic.Int64
	closed       atomic.Bool
	replyDue     atomic.Bool // a Write happened since the last Read
}

var _ net.Conn = (*conn)(nil)

func newConn(sys *sockFuncs, h int32, addr string) *conn {
	c := &conn{sys: sys, h: h, laddr: localAddr, raddr: remoteAddr(addr)}
	c.readDL.Store(noDeadline)
	c.writeDL.Store(noDeadline)
	return c
}

// Read reads what the host has buffered, waiting cooperatively (see the
// package comment) until something arrives, the connection ends, or the
// read deadline passes.
//
// Each step costs a host call, and clock reads and yields cost as much or
// more in a Go guest, so Read spends them only where they can matter: it
// yields only when another goroutine could run, reads the clock only once
// a wait has come back empty (so a deadline may be noticed up to minWait
// late), and when it is the first Read after a Write on the only
// goroutine, it waits before reading, since the reply to a request just
// sent is almost never there yet. A request and its reply thus cost write,
// wait, read.
func (c *conn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	spins, wait, timedOut := 0, minWait, false
	if c.replyDue.Swap(false) && !c.sys.others() {
		switch r := c.sys.wait(c.h, uint32(minWait/time.Millisecond)); {
		case r == 0:
			timedOut, wait = true, min(2*wait, maxWait)
		case r < 0:
			return 0, c.opErr("read", c.code(r))
		}
	}
	for {
		n := c.sys.read(c.h, p)
		switch {
		case n > 0:
			return int(n), nil
		case n == 0:
			return 0, io.EOF
		case n != abi.ErrAgain:
			return 0, c.opErr("read", c.code(n))
		}
		if spins < yieldsBeforeWait && c.sys.others() {
			spins++
			c.sys.yield()
			if c.closed.Load() {
				return 0, c.opErr("read", net.ErrClosed)
			}
			continue
		}
		spins = 0
		w := wait
		if dl := c.readDL.Load(); dl != noDeadline && timedOut {
			left := time.Duration(dl) - c.sys.since()
			if left <= 0 {
				return 0, c.opErr("read", os.ErrDeadlineExceeded)
			}
			w = min(w, left)
		}
		ms := uint32((w + time.Millisecond - 1) / time.Millisecond)
		switch r := c.sys.wait(c.h, ms); {
		case r > 0:
			wait = minWait
		case r == 0:
			timedOut, wait = true, min(2*wait, maxWait)
		default:
			return 0, c.opErr("read", c.code(r))
		}
	}
}

// Write writes all of p; the host blocks until it is sent or the call's
// deadline passes.
func (c *conn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	if dl := c.writeDL.Load(); dl != noDeadline && c.sys.since() >= time.Duration(dl) {
		return 0, c.opErr("write", os.ErrDeadlineExceeded)
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := c.sys.write(c.h, p)
	if n < 0 {
		return 0, c.opErr("write", c.code(n))
	}
	c.replyDue.Store(true)
	if int(n) < len(p) {
		return int(n), c.opErr("write", io.ErrShortWrite)
	}
	return int(n), nil
}

// Close releases the host socket. A second Close returns an error matching
// net.ErrClosed, as the standard library's connections do.
func (c *conn) Close() error {
	if c.closed.Swap(true) {
		return c.opErr("close", net.ErrClosed)
	}
	if r := c.sys.close(c.h); r < 0 && r != abi.ErrClosed {
		return c.opErr("close", c.code(r))
	}
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return c.laddr }
func (c *conn) RemoteAddr() net.Addr { return c.raddr }

func (c *conn) SetDeadline(t time.Time) error {
	c.readDL.Store(sinceEpoch(t))
	c.writeDL.Store(sinceEpoch(t))
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.readDL.Store(sinceEpoch(t))
	return nil
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.writeDL.Store(sinceEpoch(t))
	return nil
}

// sinceEpoch converts a deadline for readDL and writeDL: from
// time.Now().Add(…) it is arithmetic on the monotonic readings.
func sinceEpoch(t time.Time) int64 {
	if t.IsZero() {
		return noDeadline
	}
	return int64(t.Sub(epoch))
}

// code turns a negative host result into an error; a timeout from the host
// (the call's deadline) matches os.ErrDeadlineExceeded.
func (c *conn) code(r int32) error {
	if r == abi.ErrClosed {
		return net.ErrClosed
	}
	return hosterr.Code(r)
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: err}
}

// localAddr stands for the guest's end, which the host does not reveal.
var localAddr net.Addr = &net.TCPAddr{IP: net.IPv4zero}

// addr is a remote address given by name.
type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }

// remoteAddr is a *net.TCPAddr for an IP literal, else the name as dialed.
func remoteAddr(s string) net.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return addr(s)
}
