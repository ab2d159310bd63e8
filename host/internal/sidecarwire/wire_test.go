package sidecarwire_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/component/nameresolution"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/internalsgrpc"
	"github.com/wapr-dev/wapr/host/internal/sidecarwire"
)

// echoApp is the called app: it answers 201 with the request's body and
// headers telling what it received. A call to the method "block" waits for
// release (or its ctx, which the server never ends).
type echoApp struct {
	mu      sync.Mutex
	last    *api.AppRequest
	calls   int
	started chan struct{} // a "block" call arrived
	release chan struct{}
}

func newEchoApp() *echoApp {
	return &echoApp{started: make(chan struct{}, 16), release: make(chan struct{})}
}

func (a *echoApp) Call(ctx context.Context, req *api.AppRequest) (*api.AppResponse, error) {
	last := *req // kept past the call: a copy, as api.AppChannel asks
	last.Body = bytes.Clone(req.Body)
	a.mu.Lock()
	a.last, a.calls = &last, a.calls+1
	a.mu.Unlock()
	if req.Path == "/block" {
		a.started <- struct{}{}
		select {
		case <-a.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &api.AppResponse{
		Status: 201,
		Header: []api.Header{
			{Key: "Content-Type", Value: "application/octet-stream"},
			{Key: "X-Echo-Path", Value: req.Path},
			{Key: "X-Echo-Query", Value: req.Query},
			{Key: "X-Many", Value: "1"},
			{Key: "X-Many", Value: "2"},
		},
		Body: append([]byte(nil), req.Body...),
	}, nil
}

func (a *echoApp) seen() (*api.AppRequest, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last, a.calls
}

// server and client are the two ends of a wire.
type server interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
}

type client interface {
	api.SidecarChannel
	Close()
}

// wire is one of the package's wires, every test runs on each.
type wire struct {
	name      string
	newServer func(a *api.API, maxBody int, log *slog.Logger) server
	newClient func() client
}

var wires = []wire{
	{"grpc",
		func(a *api.API, maxBody int, log *slog.Logger) server {
			return sidecarwire.NewGRPCServer(a, maxBody, log)
		},
		func() client { return sidecarwire.NewGRPCClient() }},
	{"mux",
		func(a *api.API, maxBody int, log *slog.Logger) server {
			return sidecarwire.NewMuxServer(a, maxBody, log)
		},
		func() client { return sidecarwire.NewMuxClient() }},
	// The host's sidecar port: mux, and daprd's internals gRPC service on
	// the same port; the mux client, able to turn to the internals client.
	{"mux+internals", newSharedPort,
		func() client {
			return sidecarwire.NewMuxClientWith(internalsgrpc.NewClient(), slog.New(slog.DiscardHandler))
		}},
	// daprd's wire, dapr.proto.internals.v1, into the same port.
	{"internals", newSharedPort,
		func() client { return internalsgrpc.NewClient() }},
}

// newSharedPort is the host's sidecar port: a MuxServer handing HTTP/2
// connections to an internalsgrpc.Server.
func newSharedPort(a *api.API, maxBody int, log *slog.Logger) server {
	s := sidecarwire.NewMuxServer(a, maxBody, log)
	s.ServeHTTP2(internalsgrpc.NewServer(a, maxBody, log))
	return s
}

// forEachWire runs test on every wire, as a subtest named after it.
func forEachWire(t *testing.T, test func(t *testing.T, w wire)) {
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) { test(t, w) })
	}
}

// startCallee serves the sidecar of app "callee" (whose app is app, none
// when nil) on a random loopback port and returns its address.
func startCallee(t *testing.T, w wire, app api.AppChannel, maxBody int) (string, server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String(), serveCallee(t, w, ln, app, maxBody)
}

func serveCallee(t *testing.T, w wire, ln net.Listener, app api.AppChannel, maxBody int) server {
	t.Helper()
	a := api.New("callee", api.RuntimeInfo{})
	if app != nil {
		a.SetAppChannel(app)
	}
	srv := w.newServer(a, maxBody, slog.New(slog.DiscardHandler))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

func newClient(t *testing.T, w wire) client {
	c := w.newClient()
	t.Cleanup(c.Close)
	return c
}

func allBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func header(h []api.Header, key string) []string {
	var vs []string
	for _, kv := range h {
		if strings.EqualFold(kv.Key, key) {
			vs = append(vs, kv.Value)
		}
	}
	return vs
}

func TestRoundTrip(t *testing.T) {
	forEachWire(t, func(t *testing.T, w wire) {
		app := newEchoApp()
		addr, _ := startCallee(t, w, app, 2<<20)
		c := newClient(t, w)
		for _, tc := range []struct {
			name string
			size int
		}{{"empty body", 0}, {"1 KiB", 1 << 10}, {"2 MiB, the limit", 2 << 20}} {
			t.Run(tc.name, func(t *testing.T) {
				body := allBytes(tc.size)
				res, err := c.Call(t.Context(), addr, &api.InvokeRequest{
					AppID: "callee", CallerAppID: "caller", Verb: "PUT",
					Method: "orders/new%2Fx", Query: "id=42&tag=a%20b",
					Headers: []api.Header{
						{Key: "Content-Type", Value: "application/octet-stream"},
						{Key: "X-Twice", Value: "1"}, {Key: "X-Twice", Value: "2"},
						{Key: "Dapr-Api-Token", Value: "not for the app"},
					},
					Body: body,
				})
				if err != nil {
					t.Fatal(err)
				}
				got, _ := app.seen()
				if got.Method != "PUT" || got.Path != "/orders/new%2Fx" || got.Query != "id=42&tag=a%20b" {
					t.Errorf("the app got %s %s ? %s", got.Method, got.Path, got.Query)
				}
				if !bytes.Equal(got.Body, body) {
					t.Errorf("the app got a body of %d bytes, not the %d sent", len(got.Body), len(body))
				}
				for key, want := range map[string]string{
					"X-Twice": "1,2", "Content-Type": "application/octet-stream",
					"dapr-caller-app-id": "caller", "dapr-callee-app-id": "callee", "Dapr-Api-Token": "",
				} {
					if v := strings.Join(header(got.Header, key), ","); v != want {
						t.Errorf("the app got %s %q, want %q", key, v, want)
					}
				}
				if res.Status != 201 || !bytes.Equal(res.Body, body) {
					t.Errorf("answer: status %d, %d body bytes", res.Status, len(res.Body))
				}
				if v := strings.Join(header(res.Headers, "X-Many"), ","); v != "1,2" {
					t.Errorf("answer X-Many %q", v)
				}
			})
		}
	})
}

func TestErrors(t *testing.T) {
	forEachWire(t, func(t *testing.T, w wire) {
		app := newEchoApp()
		addr, _ := startCallee(t, w, app, 1<<10)
		noApp, _ := startCallee(t, w, nil, 0)
		c := newClient(t, w)
		call := func(addr, appID string, body []byte) error {
			_, err := c.Call(t.Context(), addr, &api.InvokeRequest{AppID: appID, CallerAppID: "caller", Verb: "POST", Method: "m", Body: body})
			return err
		}

		t.Run("misrouted", func(t *testing.T) {
			err := call(addr, "other", nil)
			if !errors.Is(err, api.ErrMisrouted) || errors.Is(err, api.ErrSidecarUnreachable) {
				t.Fatalf("got %v, want ErrMisrouted", err)
			}
			if _, n := app.seen(); n != 0 {
				t.Errorf("the app was called %d times", n)
			}
		})
		t.Run("the called sidecar fails", func(t *testing.T) {
			err := call(noApp, "callee", nil)
			var e *api.Error
			if !errors.As(err, &e) || e.Code != api.CodeDirectInvoke || !strings.HasPrefix(e.Message, "app channel is not initialized") {
				t.Fatalf("got %v, want the called sidecar's *api.Error with the cause's message", err)
			}
			if errors.Is(err, api.ErrSidecarUnreachable) || errors.Is(err, api.ErrMisrouted) {
				t.Errorf("%v is not a reason to try another instance", err)
			}
		})
		t.Run("body over the limit", func(t *testing.T) {
			// The limit plus the envelope passes gRPC's message limit.
			err := call(addr, "callee", make([]byte, 1<<10+1<<20+1))
			if err == nil || errors.Is(err, api.ErrSidecarUnreachable) {
				t.Fatalf("got %v, want a failure that is not ErrSidecarUnreachable", err)
			}
			if _, n := app.seen(); n != 0 {
				t.Errorf("the app was called %d times", n)
			}
		})
		t.Run("ctx ended", func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := c.Call(ctx, addr, &api.InvokeRequest{AppID: "callee", Verb: "GET"})
			if err == nil || errors.Is(err, api.ErrSidecarUnreachable) {
				t.Fatalf("got %v, want a failure that is not ErrSidecarUnreachable", err)
			}
		})
	})
}

// A sidecar that is not listening is unreachable; once it listens, the next
// call reaches it at once (no reconnection backoff).
func TestUnreachable(t *testing.T) {
	forEachWire(t, func(t *testing.T, w wire) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c := newClient(t, w)
		req := func() *api.InvokeRequest { return &api.InvokeRequest{AppID: "callee", Verb: "GET", Method: "m"} }
		for range 2 {
			if _, err := c.Call(t.Context(), addr, req()); !errors.Is(err, api.ErrSidecarUnreachable) {
				t.Fatalf("got %v, want ErrSidecarUnreachable", err)
			}
		}
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("the port was taken meanwhile: %v", err)
		}
		serveCallee(t, w, ln, newEchoApp(), 0)
		start := time.Now()
		if _, err := c.Call(t.Context(), addr, req()); err != nil {
			t.Fatalf("once the sidecar listens: %v", err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("the first call after the sidecar came back took %s", d)
		}

		c.Close()
		if _, err := c.Call(t.Context(), addr, req()); !errors.Is(err, api.ErrSidecarUnreachable) {
			t.Errorf("after Close: got %v, want ErrSidecarUnreachable", err)
		}
	})
}

// Shutdown lets a call in flight finish; past its ctx it cuts the call,
// which the caller sees as ErrSidecarUnreachable (the contract of
// api.SidecarChannel for a connection closed without an answer); later calls
// are unreachable too.
func TestShutdown(t *testing.T) {
	forEachWire(t, func(t *testing.T, w wire) {
		for _, tc := range []struct {
			name     string
			release  bool
			wantErr  error // of Shutdown
			wantCall error // of the call in flight; nil: it succeeds
		}{
			{"graceful", true, nil, nil},
			{"ctx ends first", false, context.DeadlineExceeded, api.ErrSidecarUnreachable},
		} {
			t.Run(tc.name, func(t *testing.T) {
				app := newEchoApp()
				addr, srv := startCallee(t, w, app, 0)
				c := newClient(t, w)
				done := make(chan error, 1)
				go func() {
					_, err := c.Call(t.Context(), addr, &api.InvokeRequest{AppID: "callee", Verb: "GET", Method: "block"})
					done <- err
				}()
				<-app.started
				ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
				defer cancel()
				// The app call outlives the caller's: it ends when released.
				release := sync.OnceFunc(func() { close(app.release) })
				defer release()
				if tc.release {
					time.AfterFunc(50*time.Millisecond, release)
				}
				if err := srv.Shutdown(ctx); !errors.Is(err, tc.wantErr) {
					t.Errorf("Shutdown: %v, want %v", err, tc.wantErr)
				}
				if err := <-done; tc.wantCall == nil && err != nil || !errors.Is(err, tc.wantCall) {
					t.Errorf("the call in flight: %v, want %v", err, tc.wantCall)
				}
				if _, err := c.Call(t.Context(), addr, &api.InvokeRequest{AppID: "callee", Verb: "GET"}); !errors.Is(err, api.ErrSidecarUnreachable) {
					t.Errorf("after Shutdown: %v, want ErrSidecarUnreachable", err)
				}
			})
		}
	})
}

// fixedResolver resolves every app id to addrs.
type fixedResolver struct{ addrs []string }

func (r fixedResolver) Init(context.Context, nameresolution.Metadata) error { return nil }
func (r fixedResolver) Close(context.Context) error                         { return nil }
func (r fixedResolver) Resolve(context.Context, nameresolution.Request) ([]string, error) {
	return append([]string(nil), r.addrs...), nil
}

// Through api.Invoke on the calling side: an unreachable instance is
// skipped, the other answers; the called sidecar's error reaches the caller
// as a DirectInvoke failure.
func TestThroughInvoke(t *testing.T) {
	forEachWire(t, func(t *testing.T, w wire) {
		app := newEchoApp()
		addr, _ := startCallee(t, w, app, 0)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()
		caller := api.New("caller", api.RuntimeInfo{})
		caller.SetInvocation(&api.Invocation{Resolver: fixedResolver{[]string{dead, addr}}, Sidecars: newClient(t, w)})
		for i := range 4 {
			res, err := caller.Invoke(t.Context(), &api.InvokeRequest{AppID: "callee", Verb: "POST", Method: "echo",
				Headers: []api.Header{{Key: "Dapr-Api-Token", Value: "s3cr3t"}}, Body: []byte("hello")})
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			if string(res.Body) != "hello" || res.Status != 201 {
				t.Fatalf("call %d: status %d, body %q", i, res.Status, res.Body)
			}
		}
		got, n := app.seen()
		if n != 4 || strings.Join(header(got.Header, "dapr-caller-app-id"), ",") != "caller" || len(header(got.Header, "Dapr-Api-Token")) != 0 {
			t.Errorf("the app got %d calls, the last with headers %v", n, got.Header)
		}

		noApp, _ := startCallee(t, w, nil, 0)
		caller.SetInvocation(&api.Invocation{Resolver: fixedResolver{[]string{noApp}}, Sidecars: newClient(t, w)})
		_, err = caller.Invoke(t.Context(), &api.InvokeRequest{AppID: "callee", Verb: "GET", Method: "m"})
		var e *api.Error
		want := "failed to invoke, id: callee, err: calling the sidecar at " + noApp + ": app channel is not initialized"
		if !errors.As(err, &e) || e.Code != api.CodeDirectInvoke || !strings.HasPrefix(e.Message, want) {
			t.Errorf("got %v, want a DirectInvoke failure starting %q", err, want)
		}
	})
}

// Many calls share the wire at once: each gets its own answer, and a call
// the app holds does not hold up the others behind it.
func TestConcurrentCalls(t *testing.T) {
	forEachWire(t, func(t *testing.T, w wire) {
		app := newEchoApp()
		addr, _ := startCallee(t, w, app, 0)
		c := newClient(t, w)
		blocked := make(chan error, 1)
		go func() {
			_, err := c.Call(t.Context(), addr, &api.InvokeRequest{AppID: "callee", Verb: "GET", Method: "block"})
			blocked <- err
		}()
		<-app.started
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		// Each answer is released once checked, as the HTTP API does, so
		// that later answers and requests reuse the buffers.
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := range 8 {
					body := []byte(strings.Repeat(string(rune('a'+(i+round)%26)), 100+i*61+round))
					res, err := c.Call(t.Context(), addr, &api.InvokeRequest{AppID: "callee", Verb: "POST", Method: "echo", Body: body})
					if err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(res.Body, body) {
						errs <- errors.New("call " + string(body[:1]) + ": another call's answer")
						return
					}
					res.Release()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		select {
		case err := <-blocked:
			t.Fatalf("the held call ended before its release: %v", err)
		default:
		}
		close(app.release)
		if err := <-blocked; err != nil {
			t.Errorf("the held call: %v", err)
		}
	})
}

// A peer that does not speak the mux wire is refused at once, both ways.
func TestMuxPreface(t *testing.T) {
	w := wires[1]
	addr, _ := startCallee(t, w, newEchoApp(), 0)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(nc)
	var ne net.Error
	if len(b) > 0 || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("the server answered %q and then %v, want the connection closed unanswered", b, err)
	}

	// A server that is not a sidecar: the call fails as unreachable.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			nc.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			nc.Close()
		}
	}()
	_, err = newClient(t, w).Call(t.Context(), ln.Addr().String(), &api.InvokeRequest{AppID: "callee", Verb: "GET"})
	if !errors.Is(err, api.ErrSidecarUnreachable) {
		t.Errorf("got %v, want ErrSidecarUnreachable", err)
	}
}

// TestMuxDefaultTimeout: a call whose ctx has no deadline ends with
// context.DeadlineExceeded once defaultTimeout has passed, and the called
// sidecar is told, so its shutdown does not wait for the call. The
// connection's expiry is driven at a time past the timeout; a call
// that has not reached it yet stays.
func TestMuxDefaultTimeout(t *testing.T) {
	w := wires[1]
	app := newEchoApp()
	defer close(app.release)
	addr, srv := startCallee(t, w, app, 0)
	c := sidecarwire.NewMuxClient()
	defer c.Close()
	errc := callBlock(c, addr)
	<-app.started
	if n := sidecarwire.ExpireCalls(c, time.Now().Add(sidecarwire.DefaultTimeout/2)); n != 0 {
		t.Fatalf("%d calls ended before their timeout", n)
	}
	if n := sidecarwire.ExpireCalls(c, time.Now().Add(sidecarwire.DefaultTimeout+time.Second)); n != 1 {
		t.Fatalf("%d calls ended past their timeout, want 1", n)
	}
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline's error", err)
	}
	sctx, scancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown waited for the expired call: %v", err)
	}
}

// callBlock calls the app's "block" method through c with a ctx that has
// no deadline, and sends the call's error once it ends.
func callBlock(c *sidecarwire.MuxClient, addr string) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), addr, &api.InvokeRequest{AppID: "callee", Verb: "GET", Method: "block"})
		errc <- err
	}()
	return errc
}

// TestMuxExpiryPass: the connection's own pass, not a test driving it,
// ends a call without a deadline once its bound has passed, and the caller
// gets context.DeadlineExceeded.
func TestMuxExpiryPass(t *testing.T) {
	w := wires[1]
	app := newEchoApp()
	defer close(app.release)
	addr, _ := startCallee(t, w, app, 0)
	c := sidecarwire.NewMuxClient()
	defer c.Close()
	const timeout = 200 * time.Millisecond
	sidecarwire.SetCallBounds(c, timeout, 20*time.Millisecond)
	start := time.Now()
	errc := callBlock(c, addr)
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the deadline's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pass of the connection ended the call")
	}
	if took := time.Since(start); took < timeout {
		t.Errorf("the call ended after %v, before its bound of %v", took, timeout)
	}
	// A call that ends in time is left alone by the passes.
	res, err := c.Call(context.Background(), addr, &api.InvokeRequest{AppID: "callee", Verb: "POST", Method: "echo", Body: []byte("in time")})
	if err != nil || string(res.Body) != "in time" {
		t.Fatalf("a call within its bound: %v, %q", err, res.Body)
	}
}

func TestMuxCancel(t *testing.T) {
	w := wires[1]
	app := newEchoApp()
	defer close(app.release)
	addr, srv := startCallee(t, w, app, 0)
	c := newClient(t, w)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, addr, &api.InvokeRequest{AppID: "callee", Verb: "GET", Method: "block"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline's error", err)
	}
	<-app.started
	sctx, scancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown waited for the given-up call: %v", err)
	}
}
