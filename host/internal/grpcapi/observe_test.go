package grpcapi

import (
	"context"
	"testing"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"

	"github.com/wapr-dev/wapr/host/internal/telemetry"
)

// newMetricsBenchServer is newBenchServer with metrics on.
func newMetricsBenchServer(tb testing.TB) runtimev1pb.DaprClient {
	_, c := newBenchServerWith(tb, telemetry.New("bench", "", telemetry.Options{}))
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
	if raceEnabled {
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
