package wasmcomp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/internal/engine"
)

// maxSockBuffer bounds what a socket reads ahead of the guest.
const maxSockBuffer = 1 << 20

// hostSock is a guest's outbound connection. A reader goroutine fills buf
// so the guest's reads never block (they return ErrAgain instead); the
// guest waits with wait(), bounded by its call's deadline.
type hostSock struct {
	conn net.Conn

	mu     sync.Mutex
	buf    []byte
	err    error // io.EOF or the read error that ended the reader
	closed bool
	space  *sync.Cond    // signalled when the guest drains buf
	ready  chan struct{} // a token when data or an error arrives
}

func newHostSock(conn net.Conn) *hostSock {
	s := &hostSock{conn: conn, ready: make(chan struct{}, 1)}
	s.space = sync.NewCond(&s.mu)
	go s.readLoop()
	return s
}

func (s *hostSock) readLoop() {
	tmp := make([]byte, 32<<10)
	for {
		n, err := s.conn.Read(tmp)
		s.mu.Lock()
		s.buf = append(s.buf, tmp[:n]...)
		if err != nil {
			s.err = err
		}
		select {
		case s.ready <- struct{}{}:
		default:
		}
		for len(s.buf) >= maxSockBuffer && s.err == nil && !s.closed {
			s.space.Wait()
		}
		stop := s.err != nil || s.closed
		s.mu.Unlock()
		if stop {
			return
		}
	}
}

// readInto hands up to limit buffered bytes to write (which copies them
// into guest memory) without an intermediate copy: n > 0, 0 at EOF,
// ErrAgain when nothing is buffered, ErrIO after a failure, or write's
// error code.
func (s *hostSock) readInto(limit int, write func([]byte) bool) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) > 0 {
		n := min(limit, len(s.buf))
		if !write(s.buf[:n]) {
			return abi.ErrInvalid
		}
		s.buf = s.buf[n:]
		if len(s.buf) == 0 {
			s.buf = nil
		}
		s.space.Signal()
		return int32(n)
	}
	switch {
	case s.err == nil:
		return abi.ErrAgain
	case errors.Is(s.err, io.EOF):
		return 0
	default:
		return abi.ErrIO
	}
}

// wait blocks until data or an error is available, the timeout passes
// (false) or ctx is done (false).
func (s *hostSock) wait(ctx context.Context, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		s.mu.Lock()
		ready := len(s.buf) > 0 || s.err != nil
		s.mu.Unlock()
		if ready {
			return true
		}
		select {
		case <-s.ready:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (s *hostSock) close() {
	s.mu.Lock()
	s.closed = true
	s.space.Broadcast()
	s.mu.Unlock()
	s.conn.Close()
}

// callDeadline is the deadline of the call in progress (or a short bound).
func callDeadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(5 * time.Second)
}

func readString(c engine.Caller, ptr, n uint32) (string, bool) {
	if n > 4096 {
		return "", false
	}
	b, ok := c.Memory().Read(ptr, n)
	return string(b), ok
}

// sockDial(addr_ptr, addr_len, flags, timeout_ms) -> handle | error.
func sockDial(ctx context.Context, c engine.Caller, stack []uint64) {
	i := instanceOf(c)
	addr, ok := readString(c, uint32(stack[0]), uint32(stack[1]))
	flags, timeoutMS := int32(stack[2]), uint32(stack[3])
	if i == nil || !ok {
		setI32(stack, abi.ErrInvalid)
		return
	}
	i.sockMu.Lock()
	open, aborted := len(i.socks), i.aborted
	i.sockMu.Unlock()
	if aborted {
		setI32(stack, abi.ErrClosed)
		return
	}
	if open >= i.c.settings.MaxSockets {
		i.c.log.Warn("guest dial refused: too many open sockets", "address", addr, "limit", i.c.settings.MaxSockets)
		setI32(stack, abi.ErrLimit)
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		setI32(stack, abi.ErrInvalid)
		return
	}
	deadline := callDeadline(ctx)
	if timeoutMS > 0 {
		deadline = minTime(deadline, time.Now().Add(time.Duration(timeoutMS)*time.Millisecond))
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, code := i.c.dialChecked(dctx, host, port)
	if code != 0 {
		setI32(stack, code)
		return
	}
	if flags&abi.SockTLS != 0 {
		tc := tls.Client(conn, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(dctx); err != nil {
			conn.Close()
			i.c.log.Warn("guest TLS handshake failed", "address", addr, "error", err)
			setI32(stack, abi.ErrIO)
			return
		}
		conn = tc
	}
	i.sockMu.Lock()
	defer i.sockMu.Unlock()
	if i.aborted {
		conn.Close()
		setI32(stack, abi.ErrClosed)
		return
	}
	i.nextSock++
	h := i.nextSock
	i.socks[h] = newHostSock(conn)
	setI32(stack, h)
}

// dialChecked resolves host, keeps the addresses the allow-list permits and
// dials one of them. It returns an abi error code on failure.
func (c *Component) dialChecked(ctx context.Context, host, port string) (net.Conn, int32) {
	addrs, err := c.allow.check(ctx, host, port)
	if err != nil {
		c.log.Warn("guest dial: name does not resolve", "host", host, "error", err)
		if ctx.Err() != nil {
			return nil, abi.ErrTimeout
		}
		return nil, abi.ErrRefused
	}
	if len(addrs) == 0 {
		c.log.Warn("guest dial refused: destination not on the allow-list", "address", net.JoinHostPort(host, port))
		return nil, abi.ErrDenied
	}
	var d net.Dialer
	var last error
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, "tcp", a.String())
		if err == nil {
			return conn, 0
		}
		last = err
	}
	c.log.Warn("guest dial failed", "address", net.JoinHostPort(host, port), "error", last)
	if errors.Is(last, context.DeadlineExceeded) || errors.Is(last, os.ErrDeadlineExceeded) {
		return nil, abi.ErrTimeout
	}
	return nil, abi.ErrRefused
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (i *instance) sock(h uint32) *hostSock {
	i.sockMu.Lock()
	defer i.sockMu.Unlock()
	return i.socks[int32(h)]
}

// sockRead(handle, buf, limit) -> n | 0 (EOF) | ErrAgain | error.
func sockRead(_ context.Context, c engine.Caller, stack []uint64) {
	i := instanceOf(c)
	if i == nil {
		setI32(stack, abi.ErrInvalid)
		return
	}
	s := i.sock(uint32(stack[0]))
	if s == nil {
		setI32(stack, abi.ErrClosed)
		return
	}
	buf, limit := uint32(stack[1]), uint32(stack[2])
	if limit == 0 {
		// 0 means end of stream; a zero-sized read cannot say anything else.
		setI32(stack, abi.ErrInvalid)
		return
	}
	mem := c.Memory()
	setI32(stack, s.readInto(int(min(limit, 64<<10)), func(b []byte) bool { return mem.Write(buf, b) }))
}

// sockWrite(handle, ptr, len) -> len | error.
func sockWrite(ctx context.Context, c engine.Caller, stack []uint64) {
	i := instanceOf(c)
	if i == nil {
		setI32(stack, abi.ErrInvalid)
		return
	}
	s := i.sock(uint32(stack[0]))
	if s == nil {
		setI32(stack, abi.ErrClosed)
		return
	}
	b, ok := c.Memory().Read(uint32(stack[1]), uint32(stack[2]))
	if !ok {
		setI32(stack, abi.ErrInvalid)
		return
	}
	s.conn.SetWriteDeadline(callDeadline(ctx))
	if _, err := s.conn.Write(b); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			setI32(stack, abi.ErrTimeout)
			return
		}
		setI32(stack, abi.ErrIO)
		return
	}
	setI32(stack, int32(len(b)))
}

// sockWait(handle, timeout_ms) -> 1 readable | 0 timeout | error.
func sockWait(ctx context.Context, c engine.Caller, stack []uint64) {
	i := instanceOf(c)
	if i == nil {
		setI32(stack, abi.ErrInvalid)
		return
	}
	s := i.sock(uint32(stack[0]))
	if s == nil {
		setI32(stack, abi.ErrClosed)
		return
	}
	timeout := time.Duration(uint32(stack[1])) * time.Millisecond
	switch {
	case s.wait(ctx, timeout):
		setI32(stack, 1)
	case ctx.Err() != nil:
		// The call is over (its deadline passed, or it was cancelled):
		// waiting again cannot help, so the guest learns it now rather
		// than spinning until it is interrupted.
		setI32(stack, abi.ErrTimeout)
	default:
		setI32(stack, 0)
	}
}

// sockClose(handle) -> 0 | ErrClosed.
func sockClose(_ context.Context, c engine.Caller, stack []uint64) {
	i := instanceOf(c)
	if i == nil {
		setI32(stack, abi.ErrInvalid)
		return
	}
	h := int32(uint32(stack[0]))
	i.sockMu.Lock()
	s := i.socks[h]
	delete(i.socks, h)
	i.sockMu.Unlock()
	if s == nil {
		setI32(stack, abi.ErrClosed)
		return
	}
	s.close()
	setI32(stack, 0)
}
