package wasmcomp_test

import (
	"context"
	"runtime"
	"sync"
	"testing"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
)

// publishers is how many goroutines publish at once in the benchmark and
// the allocation budget: the c=64 of cmd/wapr-bench.
const publishers = 64

// benchPayload is a publish of the size the API hands a broker: a small
// CloudEvents envelope.
var benchPayload = []byte(`{"specversion":"1.0","id":"5929aaac-a5e2-4ca1-859c-edfe73f11565","source":"app","type":"com.dapr.event.sent","datacontenttype":"application/json","topic":"orders","pubsubname":"pubsub","data":{"id":42}}`)

// BenchmarkWasmPublish measures Publish through components-wasm/pubsub-redis
// on a real Redis from 64 goroutines with the default pool: concurrent
// publishes share bulk publishes (batch.go), one pipelined round trip of
// XADDs each. cpu-ns/op is this process's CPU per publish (host and guest;
// Redis runs apart), which predicts throughput on a busy machine better
// than ns/op.
func BenchmarkWasmPublish(b *testing.B) {
	r := backendtest.StartRedis(b)
	for _, e := range testEngines {
		b.Run(e.name, func(b *testing.B) {
			l := newLoader(b, e)
			p := startPubSubRedis(b, l, nil, r.Addr, nil)
			ctx := context.Background()
			req := &pubsub.PublishRequest{Topic: "bench-" + e.name, Data: benchPayload, ContentType: "application/cloudevents+json"}
			b.ReportAllocs()
			b.SetParallelism(max(1, publishers/runtime.GOMAXPROCS(0)))
			batched0 := p.BatchedPublishes()
			cpu0 := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := p.Publish(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(p.BatchedPublishes()-batched0)/float64(b.N), "batched/op")
		})
	}
}

// The allocation budgets of a Wasm publish through pubsub-redis, measured
// on wazero (go1.26, amd64). lonePublishAllocs: one publisher, each
// publish a guest call of its own: the 14 of an unbatched publish (the
// request's context and timer, the guest call, the host socket's wait) plus
// the batcher's queue entry and its channel (measured exactly 17).
// batchedPublishAllocs: 64 publishers at once on one instance, so nearly
// every publish is an entry of a bulk publish and shares the per-call
// costs (measured 7.8 with 98% batched; the budget leaves room for a
// smaller share batched on a busy machine).
const (
	lonePublishAllocs    = 17
	batchedPublishAllocs = 9
)

// TestWasmPublishAllocations holds the allocations per Publish through
// pubsub-redis under their budgets, alone and batched.
func TestWasmPublishAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	r := backendtest.StartRedis(t)
	e := testEngines[0]
	l := newLoader(t, e)
	p := startPubSubRedis(t, l, nil, r.Addr, map[string]string{wasmcomp.AnnotationPoolSize: "1"})
	ctx := context.Background()
	req := &pubsub.PublishRequest{Topic: "allocs", Data: benchPayload, ContentType: "application/cloudevents+json"}
	publish := func() {
		if err := p.Publish(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 { // warm: the guest's buffers and the pool's instance
		publish()
	}
	if got := testing.AllocsPerRun(500, publish); got > lonePublishAllocs {
		t.Errorf("a lone publish allocates %.1f times, budget %d", got, lonePublishAllocs)
	} else {
		t.Logf("a lone publish allocates %.1f times (budget %d)", got, lonePublishAllocs)
	}

	batched0 := p.BatchedPublishes()
	var wg sync.WaitGroup
	start := make(chan struct{})
	runs := 0
	// Each run is publishers publishes at once; the goroutines are started
	// before the measurement and wait for their turn.
	work := make(chan chan struct{})
	for range publishers {
		wg.Go(func() {
			<-start
			for done := range work {
				if err := p.Publish(ctx, req); err != nil {
					t.Error(err)
				}
				done <- struct{}{}
			}
		})
	}
	close(start)
	round := func() {
		runs++
		done := make(chan struct{}, publishers)
		for range publishers {
			work <- done
		}
		for range publishers {
			<-done
		}
	}
	round()
	got := testing.AllocsPerRun(50, round) / publishers
	close(work)
	wg.Wait()
	share := float64(p.BatchedPublishes()-batched0) / float64(runs*publishers)
	if got > batchedPublishAllocs {
		t.Errorf("a batched publish allocates %.1f times, budget %d (%.0f%% batched)", got, batchedPublishAllocs, 100*share)
	} else {
		t.Logf("a batched publish allocates %.1f times (budget %d; %.0f%% batched)", got, batchedPublishAllocs, 100*share)
	}
}
