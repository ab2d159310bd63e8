package grpcapi

import (
	"context"
	"net"
	"testing"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// A server shut down before it serves (a host stopped as soon as it
// started) returns nil from Serve and closes the listener.
func TestServeAfterShutdown(t *testing.T) {
	s := New(Options{API: api.New("app", api.RuntimeInfo{})})
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); err != nil {
		t.Errorf("Serve after Shutdown: %v, want nil", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("the listener is still open")
	}
}
