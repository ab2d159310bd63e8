package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/components-wasm/internal/resp/resptest"
	guest "github.com/wapr-dev/wapr/sdk-guest"
	"github.com/wapr-dev/wapr/sdk-guest/testkit"
)

// benchStore returns a store initialised on the shared Redis, skipping the
// benchmark when Redis is down.
func benchStore(b *testing.B) *store {
	c, err := net.DialTimeout("tcp", resptest.SharedRedis, time.Second)
	if err != nil {
		b.Skip("Redis is not running at " + resptest.SharedRedis)
	}
	c.Close()
	s := newStore()
	if err := s.Init(context.Background(), guest.Metadata{Properties: map[string]string{"redisHost": resptest.SharedRedis}}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// TestAllocations pins the allocation budget of Get and Set on the native
// build: none. In a Go guest an allocation costs about half a microsecond,
// and Redis round trips are the store's hot path (see store).
func TestAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation budget")
	}
	resptest.RequireRedis(t)
	p := resptest.UniquePrefix(t)
	resptest.CleanupPrefix(t, resptest.SharedRedis, p)
	s := newStore()
	if err := s.Init(context.Background(), guest.Metadata{Properties: map[string]string{"redisHost": resptest.SharedRedis}}); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := context.Background()
	key := p + "k"
	set := &abi.StateSetRequest{Key: key, Value: []byte(`{"n":1}`), ContentType: "application/json"}
	if err := s.Set(ctx, set); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, &abi.StateGetRequest{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	del := &abi.StateDeleteRequest{Key: p + "absent"}
	stale := &abi.StateSetRequest{Key: key, Value: []byte(`{"n":2}`), ETag: "1", HasETag: true}
	if err := s.Set(ctx, &abi.StateSetRequest{Key: key, Value: []byte(`{"n":1}`), ContentType: "application/json", ETag: got.ETag, HasETag: true}); err != nil {
		t.Fatalf("set with the current etag: %v", err)
	}
	for _, tt := range []struct {
		name   string
		op     func() error
		allocs float64
	}{
		{"get", func() error {
			got, err := s.Get(ctx, &abi.StateGetRequest{Key: key})
			if err == nil && (got.ContentType != "application/json" || got.ETag == "") {
				t.Fatalf("get = %+v", got)
			}
			return err
		}, 0},
		{"set", func() error { return s.Set(ctx, set) }, 0},
		{"delete", func() error { return s.Delete(ctx, del) }, 0},
		// A refused write allocates its error, and nothing else.
		{"set with a stale etag", func() error {
			if err := s.Set(ctx, stale); testkit.Status(err) != abi.StatusETagMismatch {
				t.Fatalf("set with a stale etag: %v", err)
			}
			return nil
		}, 1},
	} {
		allocs := testing.AllocsPerRun(50, func() {
			if err := tt.op(); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
		})
		if allocs != tt.allocs {
			t.Errorf("%s: %.1f allocations per call, want %.0f", tt.name, allocs, tt.allocs)
		}
	}
}

// BenchmarkGet is one Get on the native build: the Redis round trip plus
// the component's own work. Its allocations are what the Wasm guest pays
// for (each costs far more in Go-in-Wasm than natively).
func BenchmarkGet(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	key := "wapr-wasm-bench:state-redis:get"
	value := []byte(`{"name":"a value of some size","n":42,"tags":["x","y","z"]}`)
	if err := s.Set(ctx, &abi.StateSetRequest{Key: key, Value: value, ContentType: "application/json"}); err != nil {
		b.Fatal(err)
	}
	req := &abi.StateGetRequest{Key: key}
	b.ReportAllocs()
	for b.Loop() {
		res, err := s.Get(ctx, req)
		if err != nil || len(res.Data) != len(value) {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkSet is one unguarded Set (one script call) on the native build.
func BenchmarkSet(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	req := &abi.StateSetRequest{Key: "wapr-wasm-bench:state-redis:set", Value: []byte(`{"name":"a value of some size","n":42,"tags":["x","y","z"]}`)}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Set(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
