package hostnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/abi"
)

// fakeSock is a scripted host socket with a fake clock: each host wait
// advances the clock by its timeout unless data arrives.
type fakeSock struct {
	clock   time.Time
	pending []byte // what the next read returns once arriveAt has passed
	arrive  time.Time
	eof     bool
	readErr int32
	waits   []uint32 // timeouts of the host waits, in order
	yields  int
	others  bool // whether the guest has goroutines besides the reader
	reads   int  // host reads, including those that found nothing
	written []byte
	closes  int
}

func (f *fakeSock) funcs() *sockFuncs {
	return &sockFuncs{
		read: func(_ int32, p []byte) int32 {
			f.reads++
			if f.readErr != 0 {
				return f.readErr
			}
			if len(f.pending) > 0 && !f.clock.Before(f.arrive) {
				n := copy(p, f.pending)
				f.pending = f.pending[n:]
				return int32(n)
			}
			if f.eof && len(f.pending) == 0 {
				return 0
			}
			return abi.ErrAgain
		},
		write: func(_ int32, p []byte) int32 { f.written = append(f.written, p...); return int32(len(p)) },
		wait: func(_ int32, ms uint32) int32 {
			f.waits = append(f.waits, ms)
			end := f.clock.Add(time.Duration(ms) * time.Millisecond)
			if len(f.pending) > 0 && !f.arrive.After(end) {
				f.clock = f.arrive
				return 1
			}
			f.clock = end
			return 0
		},
		close:  func(int32) int32 { f.closes++; return 0 },
		yield:  func() { f.yields++ },
		others: func() bool { return f.others },
		since:  func() time.Duration { return f.clock.Sub(epoch) },
	}
}

func newFake() *fakeSock { return &fakeSock{clock: time.Unix(1000, 0)} }

func TestReadWaitsCooperatively(t *testing.T) {
	for _, others := range []bool{true, false} {
		t.Run(fmt.Sprintf("other goroutines=%t", others), func(t *testing.T) {
			f := newFake()
			f.others = others
			f.pending, f.arrive = []byte("+PONG\r\n"), f.clock.Add(30*time.Millisecond)
			c := newConn(f.funcs(), 7, "127.0.0.1:6379")
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != "+PONG\r\n" {
				t.Fatalf("Read = %q, %v", buf[:n], err)
			}
			// 1+2+4+8 = 15ms without data, then a 10ms wait, then the data at 30ms.
			want := []uint32{1, 2, 4, 8, 10, 10}
			if !equal(f.waits, want) {
				t.Errorf("host waits %v, want %v", f.waits, want)
			}
			// Yields before every wait, unless no other goroutine could
			// use them.
			wantYields := 0
			if others {
				wantYields = yieldsBeforeWait * len(want)
			}
			if f.yields != wantYields {
				t.Errorf("%d yields, want %d", f.yields, wantYields)
			}
		})
	}
}

// TestReadAfterWrite checks the host calls of a request and its reply: the
// first Read after a Write waits before reading when no other goroutine
// could run, and reads first (yielding before any wait) otherwise.
func TestReadAfterWrite(t *testing.T) {
	for _, tt := range []struct {
		name       string
		others     bool
		write      bool
		reads      int
		yields     int
		firstWaits []uint32
	}{
		{"reply to a request", false, true, 1, 0, []uint32{1}},
		{"read without a request", false, false, 2, 0, []uint32{1}},
		{"reply with other goroutines", true, true, 5, 3, []uint32{1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.others = tt.others
			c := newConn(f.funcs(), 7, "redis:6379")
			if tt.write {
				if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
					t.Fatal(err)
				}
			}
			f.pending, f.arrive = []byte("+PONG\r\n"), f.clock.Add(300*time.Microsecond)
			buf := make([]byte, 16)
			if n, err := c.Read(buf); err != nil || string(buf[:n]) != "+PONG\r\n" {
				t.Fatalf("Read = %q, %v", buf[:n], err)
			}
			if f.reads != tt.reads || f.yields != tt.yields || !equal(f.waits, tt.firstWaits) {
				t.Errorf("%d reads, %d yields, waits %v; want %d, %d, %v", f.reads, f.yields, f.waits, tt.reads, tt.yields, tt.firstWaits)
			}
			// A second Read without a new Write reads first again.
			f.pending, f.arrive, f.reads, f.waits = []byte("x"), f.clock.Add(300*time.Microsecond), 0, nil
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
			if !tt.others && f.reads != 2 {
				t.Errorf("second Read: %d host reads, want 2 (read, wait, read)", f.reads)
			}
		})
	}
}

// TestReadDeadlineFromNow checks a deadline set the way clients set it,
// time.Now().Add(…), against the monotonic clock Read compares it with.
func TestReadDeadlineFromNow(t *testing.T) {
	f := newFake()
	start := time.Now()
	f.clock = start
	c := newConn(f.funcs(), 7, "redis:6379")
	c.SetReadDeadline(start.Add(3 * time.Millisecond))
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
	if want := []uint32{1, 2}; !equal(f.waits, want) {
		t.Errorf("host waits %v, want %v", f.waits, want)
	}
}

func TestReadDeadline(t *testing.T) {
	f := newFake()
	c := newConn(f.funcs(), 7, "redis:6379")
	c.SetReadDeadline(f.clock.Add(5 * time.Millisecond))
	_, err := c.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v is not a net.Error timeout", err)
	}
	// The last wait is cut to the deadline: 1 + 2 + 2 = 5ms.
	if want := []uint32{1, 2, 2}; !equal(f.waits, want) {
		t.Errorf("host waits %v, want %v", f.waits, want)
	}
	// SetDeadline(zero) clears it.
	c.SetDeadline(time.Time{})
	f.pending, f.arrive = []byte("x"), f.clock.Add(50*time.Millisecond)
	if n, err := c.Read(make([]byte, 8)); n != 1 || err != nil {
		t.Fatalf("Read after clearing the deadline = %d, %v", n, err)
	}
}

func TestReadEOFAndErrors(t *testing.T) {
	f := newFake()
	f.eof = true
	c := newConn(f.funcs(), 7, "redis:6379")
	if _, err := c.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("EOF: %v", err)
	}
	f.readErr = abi.ErrTimeout // the call's deadline, as the host reports it
	_, err := c.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("host timeout: %v", err)
	}
	f.readErr = abi.ErrIO
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), "redis:6379") {
		t.Fatalf("host I/O error: %v", err)
	}
}

func TestWriteAndClose(t *testing.T) {
	f := newFake()
	c := newConn(f.funcs(), 7, "10.0.0.1:80")
	if n, err := c.Write([]byte("PING\r\n")); n != 6 || err != nil || string(f.written) != "PING\r\n" {
		t.Fatalf("Write = %d, %v (%q)", n, err, f.written)
	}
	c.SetWriteDeadline(f.clock.Add(-time.Second))
	if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past its deadline: %v", err)
	}
	if c.RemoteAddr().String() != "10.0.0.1:80" || c.LocalAddr().Network() != "tcp" {
		t.Errorf("addrs %v %v", c.LocalAddr(), c.RemoteAddr())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) || f.closes != 1 {
		t.Fatalf("second Close = %v (%d host closes)", err, f.closes)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

func equal(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNativeDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := Dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "hi" {
		t.Fatalf("read %q", b)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Dial(context.Background(), "tcp", addr); !errors.Is(err, ErrRefused) {
		t.Fatalf("dial a closed port: %v, want ErrRefused", err)
	}
}
