package sidecarwire_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/internalsgrpc"
	"github.com/wapr-dev/wapr/host/internal/sidecarwire"
)

// A sidecar that speaks only gRPC, as a daprd: the mux client finds out
// from its answer to the preface and calls it through the internals
// client, for this and every later call; without one it is unreachable.
func TestMuxFallsBackToHTTP2(t *testing.T) {
	a := api.New("callee", api.RuntimeInfo{})
	app := newEchoApp()
	a.SetAppChannel(app)
	daprd := internalsgrpc.NewServer(a, 0, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go daprd.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		daprd.Shutdown(ctx)
	})
	addr := ln.Addr().String()
	req := func() *api.InvokeRequest {
		return &api.InvokeRequest{AppID: "callee", CallerAppID: "caller", Verb: "POST", Method: "m", Body: []byte("hi")}
	}

	plain := sidecarwire.NewMuxClient()
	defer plain.Close()
	if _, err := plain.Call(t.Context(), addr, req()); !errors.Is(err, api.ErrSidecarUnreachable) {
		t.Errorf("without a fallback: got %v, want ErrSidecarUnreachable", err)
	}

	c := sidecarwire.NewMuxClientWith(internalsgrpc.NewClient(), slog.New(slog.DiscardHandler))
	defer c.Close()
	for i := range 3 {
		res, err := c.Call(t.Context(), addr, req())
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if res.Status != 201 || string(res.Body) != "hi" {
			t.Errorf("call %d: %d %q", i, res.Status, res.Body)
		}
	}
	if _, n := app.seen(); n != 3 {
		t.Errorf("the app got %d calls, want 3", n)
	}
}

// On the shared port, an HTTP/2 connection goes to the HTTP/2 server, any
// other to the mux wire, which refuses what is not its preface.
func TestSharedPortSniffs(t *testing.T) {
	w := wire{"shared", newSharedPort, func() client { return sidecarwire.NewMuxClient() }}
	app := newEchoApp()
	addr, _ := startCallee(t, w, app, 0)
	for name, c := range map[string]client{"mux": newClient(t, w), "internals": internalsgrpc.NewClient()} {
		res, err := c.Call(t.Context(), addr, &api.InvokeRequest{AppID: "callee", Verb: "GET", Method: "m"})
		if err != nil || res.Status != 201 {
			t.Errorf("%s: %v %v", name, res, err)
		}
		c.Close()
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// 'P' but not HTTP/2: the HTTP/2 server closes it, after its SETTINGS.
	nc.Write([]byte("PUT / HTTP/1.1\r\nHost: x\r\n\r\n"))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(nc)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("a connection that is neither wire stayed open")
	}
}
