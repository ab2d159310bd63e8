package rawsock_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/internal/rawsock"
)

// pair returns both ends of a loopback TCP connection, each through
// rawsock.Conn.
func pair(t *testing.T) (accepted, dialled net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		got <- rawsock.Conn(c)
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	d = rawsock.Conn(d)
	a := <-got
	if a == nil {
		t.FailNow()
	}
	t.Cleanup(func() { a.Close(); d.Close() })
	return a, d
}

func TestConnWraps(t *testing.T) {
	a, d := pair(t)
	for _, c := range []net.Conn{a, d} {
		if _, plain := c.(*net.TCPConn); plain == (runtime.GOOS == "linux") {
			t.Fatalf("on %s got %T", runtime.GOOS, c)
		}
	}
	// Anything but a TCP connection is left as it is.
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if rawsock.Conn(p1) != p1 {
		t.Fatal("a pipe was wrapped")
	}
}

// TestRoundTrip sends bodies of every size class both ways at once: small
// ones (raw), ones above the raw bound (net.Conn's path) and one larger than
// the socket's buffers, whose write must wait for the reader more than once.
func TestRoundTrip(t *testing.T) {
	a, d := pair(t)
	sizes := []int{1, 100, 4096, 64 << 10, 64<<10 + 1, 300 << 10, 8 << 20}
	// 8 MiB more in raw writes, faster than the reader takes them, so
	// that some find the socket full and wait for room.
	for range 256 {
		sizes = append(sizes, 32<<10)
	}
	var wg sync.WaitGroup
	for _, dir := range [][2]net.Conn{{a, d}, {d, a}} {
		w, r := dir[0], dir[1]
		var sent bytes.Buffer
		for i, n := range sizes {
			sent.Write(bytes.Repeat([]byte{byte(i)}, n))
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			rest := sent.Bytes()
			for _, n := range sizes {
				m, err := w.Write(rest[:n])
				if err != nil || m != n {
					t.Errorf("write %d: wrote %d, %v", n, m, err)
					w.Close() // ends the reader
					return
				}
				rest = rest[n:]
			}
		}()
		go func() {
			defer wg.Done()
			got := make([]byte, sent.Len())
			// Reads of varied sizes, small (raw) and large.
			for off, i := 0, 0; off < len(got); i++ {
				end := min(len(got), off+[]int{7, 1500, 100 << 10}[i%3])
				m, err := r.Read(got[off:end])
				if err != nil {
					t.Errorf("read at %d: %v", off, err)
					return
				}
				off += m
			}
			if !bytes.Equal(got, sent.Bytes()) {
				t.Error("bytes read differ from bytes written")
			}
		}()
	}
	wg.Wait()
}

func TestEOF(t *testing.T) {
	a, d := pair(t)
	if _, err := d.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	d.Close()
	got := make([]byte, 4)
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "last" {
		t.Fatalf("ReadFull = %q, %v; want \"last\"", got, err)
	}
	if n, err := a.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v", n, err)
	}
}

func TestReadDeadline(t *testing.T) {
	a, _ := pair(t)
	a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := a.Read(make([]byte, 16))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline = %v; want a timeout", err)
	}
	if since := time.Since(start); since < 50*time.Millisecond {
		t.Fatalf("Read timed out after %v, before its deadline", since)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("error %#v is not a read OpError", err)
	}
}

// TestWriteDeadline fills the socket until a write must wait for a reader
// that never comes; the deadline ends it with what was written.
func TestWriteDeadline(t *testing.T) {
	a, _ := pair(t)
	a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	chunk := make([]byte, 32<<10)
	total := 0
	for {
		n, err := a.Write(chunk)
		total += n
		if err == nil && n < len(chunk) {
			t.Fatalf("Write wrote %d of %d bytes without an error", n, len(chunk))
		}
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write = %v; want a timeout", err)
			}
			break
		}
		if total > 1<<30 {
			t.Fatal("1 GiB written to a socket nobody reads")
		}
	}
	if total == 0 {
		t.Fatal("nothing was written before the deadline")
	}
}

// TestCloseWhileReading proves a read waiting on the poller ends when
// another goroutine closes the connection, with net.ErrClosed.
func TestCloseWhileReading(t *testing.T) {
	a, _ := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 16))
		done <- err
	}()
	// The read is parked or about to be; either way Close must end it.
	a.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read on a closed connection = %v; want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not end when its connection was closed")
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write on a closed connection = %v; want net.ErrClosed", err)
	}
}

// TestPeerReset proves reads and writes on a connection its peer reset fail
// with the kernel's error rather than hanging or crashing the process.
func TestPeerReset(t *testing.T) {
	a, d := pair(t)
	d.(interface{ SetLinger(int) error }).SetLinger(0)
	d.Close() // sends RST
	_, err := a.Read(make([]byte, 16))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after a reset = %v; want ECONNRESET", err)
	}
	var se *os.SyscallError
	if !errors.As(err, &se) || se.Syscall != "read" {
		t.Fatalf("Read's error %#v is not a read SyscallError", err)
	}
	if _, err := a.Write([]byte("after the reset")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write after a reset = %v; want EPIPE", err)
	}
}

// TestConcurrentWrites writes blocks from several goroutines at once on one
// connection: as with net.Conn, each Write must arrive whole, never
// interleaved with another's.
func TestConcurrentWrites(t *testing.T) {
	a, d := pair(t)
	const writers, blocks, size = 8, 200, 1024
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range blocks {
				block := bytes.Repeat([]byte{byte(w*blocks + b)}, size)
				if _, err := d.Write(block); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// A broken Write loses or mixes bytes: the reads then end here.
	a.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, size)
	for i := range writers * blocks {
		if _, err := io.ReadFull(a, got); err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if bytes.Count(got, got[:1]) != size {
			t.Fatalf("block %d holds bytes of more than one Write", i)
		}
	}
	wg.Wait()
}

// TestConcurrentReads reads one stream from several goroutines at once:
// every byte written is read exactly once.
func TestConcurrentReads(t *testing.T) {
	a, d := pair(t)
	const total = 4 << 20
	go func() {
		d.Write(bytes.Repeat([]byte{1}, total))
		d.Close()
	}()
	var wg sync.WaitGroup
	sums := make([]int, 4)
	for r := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1000)
			for {
				n, err := a.Read(buf)
				sums[r] += int(bytes.Count(buf[:n], []byte{1}))
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if sum := sums[0] + sums[1] + sums[2] + sums[3]; sum != total {
		t.Fatalf("read %d bytes of %d", sum, total)
	}
}
