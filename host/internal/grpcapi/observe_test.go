package grpcapi

import (
	"context"
	"net"
	"testing"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	statememory "github.com/wapr-dev/wapr/builtin/state/memory"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/telemetry"
)

// newMetricsBenchServer is newBenchServer with metrics on, the store
// instrumented as the host instruments it.
func newMetricsBenchServer(tb testing.TB) runtimev1pb.DaprClient {
	tb.Helper()
	store := statememory.New()
	if err := store.Init(tb.Context(), component.Metadata{Name: "statestore", Type: "state.in-memory"}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close(context.Background()) })
	m := telemetry.New("bench", "", telemetry.Options{})
	a := api.New("bench", api.RuntimeInfo{})
	snap := &api.Snapshot{States: map[string]*api.StateStore{
		"statestore": {Info: api.Info{Name: "statestore"}, Store: store, Bulk: store, Tx: store, Features: store.Features(), Prefix: "bench"},
	}}
	m.Instrument(snap, "statestore", store)
	a.SetSnapshot(snap)
	s := New(Options{API: a, Metrics: m})
	ln := bufconn.Listen(1 << 20)
	go s.Serve(ln)
	tb.Cleanup(func() { s.Shutdown(context.Background()) })
	conn, err := grpc.NewClient("passthrough:///bench",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	c := runtimev1pb.NewDaprClient(conn)
	if _, err := c.SaveState(tb.Context(), saveRequest()); err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkGRPCGetStateMetrics is BenchmarkGRPCGetState with metrics on.
func BenchmarkGRPCGetStateMetrics(b *testing.B) {
	c := newMetricsBenchServer(b)
	in := getRequest()
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := c.GetState(context.Background(), in)
			if err != nil || len(res.GetData()) != len(benchValue) {
				b.Fatalf("get: %v, %v", res, err)
			}
		}
	})
}

// TestMetricsAllocations bounds what metrics add to a GetState round trip:
// the interceptor gRPC then calls (its call info and handler closure).
// With metrics off there is no interceptor (TestGRPCStateAllocations).
func TestMetricsAllocations(t *testing.T) {
	if raceEnabled() {
		t.Skip("allocation counts differ under the race detector")
	}
	_, plain := newBenchServer(t)
	observed := newMetricsBenchServer(t)
	ctx := context.Background()
	get := getRequest()
	count := func(c runtimev1pb.DaprClient) float64 {
		return testing.AllocsPerRun(1000, func() {
			if _, err := c.GetState(ctx, get); err != nil {
				t.Fatal(err)
			}
		})
	}
	off, on := count(plain), count(observed)
	t.Logf("GetState round trip: %.1f allocations with metrics off, %.1f on", off, on)
	if on-off > 2 {
		t.Errorf("metrics cost %.1f allocations per call, budget 2", on-off)
	}
}
