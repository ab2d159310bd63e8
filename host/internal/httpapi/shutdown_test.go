package httpapi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/internal/api"
)

var quietLogger = slog.New(slog.DiscardHandler)

// rawClient is an HTTP/1.1 client on one connection that never retries, so
// a request lost on the connection shows as an error.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{conn: c, br: bufio.NewReader(c)}
}

// get sends GET path and reads the whole response.
func (c *rawClient) get(path string) (*http.Response, error) {
	if _, err := io.WriteString(c.conn, "GET "+path+" HTTP/1.1\r\nHost: wapr\r\n\r\n"); err != nil {
		return nil, err
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res, err
}

// serveTCP serves s on a loopback port and returns its address and what
// Serve returned.
func serveTCP(t *testing.T, s *Server) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	return ln.Addr().String(), served
}

// waitStopped returns once Shutdown has stopped accepting and closed the
// listener Serve was given.
func waitStopped(t *testing.T, s *Server) {
	t.Helper()
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	select {
	case <-ln.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener still accepts 10 s after Shutdown began")
	}
}

// TestShutdownAnswersRequestsSentDuringDrain: once Shutdown has stopped
// accepting, a request sent on an idle keep-alive connection, or as the
// first request of a connection opened before (accepted, or still queued
// in the kernel when Shutdown began), is answered, and the answer says
// Connection: close; Shutdown then returns without waiting for the idle
// grace. On both ends the server serves: the API and the sidecar-to-sidecar
// channel.
func TestShutdownAnswersRequestsSentDuringDrain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sidecar bool
		path    string
	}{
		{"API", false, "/v1.0/healthz"},
		{"sidecar channel", true, "/method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{API: api.New("app", api.RuntimeInfo{}), Sidecar: tc.sidecar, Logger: quietLogger})
			// Long enough that a client of a loaded machine always sends
			// before its connection counts as quiet; Shutdown must still
			// return without waiting for it.
			s.drainIdle = 10 * time.Second
			addr, served := serveTCP(t, s)
			idle := dialRaw(t, addr)
			if _, err := idle.get(tc.path); err != nil {
				t.Fatal(err)
			}
			clients := []*rawClient{idle}
			for range 32 {
				clients = append(clients, dialRaw(t, addr))
			}

			stopped := make(chan error, 1)
			start := time.Now()
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				stopped <- s.Shutdown(ctx)
			}()
			waitStopped(t, s)
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				t.Fatal("the listener accepts after Shutdown closed it")
			}

			for _, c := range clients {
				// The first answer may precede the switch to draining by a
				// hair; the one after it closes.
				for i := 0; ; i++ {
					res, err := c.get(tc.path)
					if err != nil {
						t.Fatalf("request %d after Shutdown began: %v", i, err)
					}
					if res.Close {
						break
					}
					if i == 3 {
						t.Fatal("no Connection: close after Shutdown began")
					}
				}
			}
			if err := <-stopped; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if d := time.Since(start); d >= s.drainIdle {
				t.Errorf("Shutdown took %v: it waited for connections that had closed", d)
			}
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
}

// TestShutdownClosesSilentConnections: a keep-alive connection that sends
// nothing more is closed after the idle grace, and at once when ctx ends
// first; the client sees the connection end without a partial response.
func TestShutdownClosesSilentConnections(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		want    error
	}{
		{"idle grace", 10 * time.Second, nil},
		{"ctx done first", drainIdle / 5, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{API: api.New("app", api.RuntimeInfo{}), Logger: quietLogger})
			addr, _ := serveTCP(t, s)
			idle := dialRaw(t, addr)
			if _, err := idle.get("/v1.0/healthz"); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			if err := s.Shutdown(ctx); !errors.Is(err, tc.want) {
				t.Fatalf("Shutdown: %v, want %v", err, tc.want)
			}
			if n, err := idle.br.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Fatalf("read on the idle connection: %d bytes, %v; want it closed", n, err)
			}
		})
	}
}

// TestServeAfterShutdown: a Shutdown that comes before Serve (a host stopped
// right after it started) makes Serve return at once.
func TestServeAfterShutdown(t *testing.T) {
	s := New(Options{API: api.New("app", api.RuntimeInfo{}), Logger: quietLogger})
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	select {
	case err := <-served:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve after Shutdown: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve after Shutdown still serves after 10 s")
	}
}

// TestIdleConnectionsClosed: while serving, a connection idle for the
// idle timeout is closed, and so is one that connected and never sent a
// request; one that keeps sending requests stays open.
func TestIdleConnectionsClosed(t *testing.T) {
	s := New(Options{API: api.New("app", api.RuntimeInfo{}), Logger: quietLogger})
	s.idleTimeout = 300 * time.Millisecond
	addr, served := serveTCP(t, s)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-served
	}()
	idle, silent, busy := dialRaw(t, addr), dialRaw(t, addr), dialRaw(t, addr)
	if _, err := idle.get("/v1.0/healthz"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan *rawClient, 2)
	for _, c := range []*rawClient{idle, silent} {
		go func() {
			c.br.Read(make([]byte, 1)) // returns when the server closes it
			closed <- c
		}()
	}
	start := time.Now()
	for n := 0; n < 2; {
		if _, err := busy.get("/v1.0/healthz"); err != nil {
			t.Fatalf("the busy connection, %s after the start: %v", time.Since(start), err)
		}
		select {
		case <-closed:
			n++
		case <-time.After(20 * time.Millisecond): // the busy client's pace
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%d of the idle and the silent connection closed after 10 s", n)
		}
	}
	if d := time.Since(start); d < s.idleTimeout {
		t.Fatalf("an idle connection closed after %s, before the idle timeout", d)
	}
	if _, err := busy.get("/v1.0/healthz"); err != nil {
		t.Fatalf("the busy connection after the others closed: %v", err)
	}
}
