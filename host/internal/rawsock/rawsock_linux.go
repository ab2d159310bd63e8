package rawsock

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Conn returns c with raw reads and writes when c is a TCP connection whose
// descriptor can be reached, and c itself otherwise.
func Conn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	r := &conn{TCPConn: tc, rc: rc}
	r.r.sysno, r.w.sysno, r.w.all = syscall.SYS_READ, syscall.SYS_WRITE, true
	r.r.fn, r.w.fn = r.r.call, r.w.call
	return r
}

// conn is a TCP connection whose small reads and writes are raw. Like any
// net.Conn it may be read and written by several goroutines at once.
type conn struct {
	*net.TCPConn
	rc   syscall.RawConn
	r, w side
}

// side is one direction of a conn. Its lock holds its state for the whole
// of one Read or Write; fn is call, bound once, so a call allocates nothing.
type side struct {
	mu    sync.Mutex
	sysno uintptr // SYS_READ or SYS_WRITE
	all   bool    // a write takes all of buf; a read what there is
	fn    func(fd uintptr) bool
	buf   []byte
	n     int
	errno syscall.Errno
}

// call is the RawConn callback: it reads or writes buf[n:] until done, or
// returns false when the socket is empty or full, for RawConn to wait until
// it is ready and call again.
func (s *side) call(fd uintptr) bool {
	for s.n < len(s.buf) {
		n, _, errno := syscall.RawSyscall(s.sysno, fd, uintptr(unsafe.Pointer(&s.buf[s.n])), uintptr(len(s.buf)-s.n))
		switch errno {
		case 0:
			s.n += int(n)
			if !s.all {
				return true // a read returns what it got; 0 is the end of the stream
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.errno = errno
			return true
		}
	}
	return true
}

// do reads or writes p through c's RawConn and returns what call counted.
func (s *side) do(c *conn, p []byte) (n int, errno syscall.Errno, err error) {
	s.mu.Lock()
	s.buf, s.n, s.errno = p, 0, 0
	if s.all {
		err = c.rc.Write(s.fn)
	} else {
		err = c.rc.Read(s.fn)
	}
	n, errno = s.n, s.errno
	s.buf = nil
	s.mu.Unlock()
	return n, errno, err
}

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 || len(p) > rawMax {
		return c.TCPConn.Read(p)
	}
	n, errno, err := c.r.do(c, p)
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	raceRead(p[:n])
	return n, nil
}

func (c *conn) Write(p []byte) (int, error) {
	if len(p) == 0 || len(p) > rawMax {
		return c.TCPConn.Write(p)
	}
	raceWritten(p)
	n, errno, err := c.w.do(c, p)
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case errno != 0:
		return n, c.opError("write", errno)
	}
	return n, nil
}

// opError wraps err as net.Conn's own Read and Write do, so that callers
// testing for timeouts or closed connections see what they expect.
func (c *conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok { // RawConn's own, as "raw-read"
		err = oe.Err
	}
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
