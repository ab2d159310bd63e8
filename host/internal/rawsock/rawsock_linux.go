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
	r.readFn, r.writeFn = r.read, r.write
	return r
}

// conn is a TCP connection whose small reads and writes are raw. Like any
// net.Conn it may be read and written by several goroutines at once: each
// direction's state is held by its own lock for the whole of one Read or
// Write (the callbacks are bound once, so a call allocates nothing).
type conn struct {
	*net.TCPConn
	rc syscall.RawConn

	rmu    sync.Mutex
	readFn func(fd uintptr) bool // c.read
	rbuf   []byte
	rn     int
	rerr   syscall.Errno

	wmu     sync.Mutex
	writeFn func(fd uintptr) bool // c.write
	wbuf    []byte
	wn      int
	werr    syscall.Errno
}

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 || len(p) > rawMax {
		return c.TCPConn.Read(p)
	}
	c.rmu.Lock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerr
	c.rbuf = nil
	c.rmu.Unlock()
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

// read is the RawConn callback of Read: false asks it to wait until the
// socket is readable and call again.
func (c *conn) read(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch errno {
		case 0:
			c.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.rerr = errno
		return true
	}
}

func (c *conn) Write(p []byte) (int, error) {
	if len(p) == 0 || len(p) > rawMax {
		return c.TCPConn.Write(p)
	}
	raceWritten(p)
	c.wmu.Lock()
	c.wbuf, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFn)
	n, errno := c.wn, c.werr
	c.wbuf = nil
	c.wmu.Unlock()
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case errno != 0:
		return n, c.opError("write", errno)
	}
	return n, nil
}

// write is the RawConn callback of Write: it writes until all of wbuf is
// taken or the socket is full, when false asks to wait for room.
func (c *conn) write(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		rest := c.wbuf[c.wn:]
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch errno {
		case 0:
			c.wn += int(n)
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.werr = errno
		return true
	}
	return true
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
