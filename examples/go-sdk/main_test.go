package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	pubsubmemory "github.com/wapr-dev/wapr/builtin/pubsub/memory"
	statememory "github.com/wapr-dev/wapr/builtin/state/memory"
	"github.com/wapr-dev/wapr/host"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/state"
)

// TestRun runs the example against a wapr host on its embedded defaults,
// with the app on gRPC, as `wapr run --app-protocol grpc` would.
func TestRun(t *testing.T) {
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := host.NewRegistry()
	reg.RegisterStateStore(host.InMemoryStateType, func() state.Store { return statememory.New() })
	reg.RegisterPubSub(host.InMemoryPubSubType, func() pubsub.PubSub { return pubsubmemory.New() })
	h, err := host.New(host.Options{
		AppID:        "orders",
		AppPort:      appLn.Addr().(*net.TCPAddr).Port,
		AppProtocol:  "grpc",
		Listener:     httpLn,
		GRPCListener: grpcLn,
		Registry:     reg,
		WasmCacheDir: "-",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, appLn, grpcLn.Addr().String(), &out); err != nil {
		t.Fatal(err)
	}
	want := "received from topic orders: {\"id\":\"order-1\",\"qty\":3}\nstate order-1: {\"id\":\"order-1\",\"qty\":3}\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}
