package redis_test

import (
	"bytes"
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/host/component/state"
)

// The benchmarks run the store and a raw go-redis client side by side on
// the same private server, so their ratio shows what the driver adds: the
// TTL read and the response for Get, the Lua script and its condition for
// Set.

var benchSizes = []int{16, 1024}

func BenchmarkGet(b *testing.B) {
	srv := startServer(b)
	s := newStore(b, srv, nil)
	ctx := context.Background()
	for _, size := range benchSizes {
		key := "key" + strconv.Itoa(size)
		if err := s.Set(ctx, &state.SetRequest{Key: key, Value: bytes.Repeat([]byte("v"), size)}); err != nil {
			b.Fatal(err)
		}
		b.Run(strconv.Itoa(size)+"B/store", func(b *testing.B) {
			req := &state.GetRequest{Key: key}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := s.Get(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(strconv.Itoa(size)+"B/raw-HGET", func(b *testing.B) {
			raw := rawClient(b, srv)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := raw.HGet(ctx, key, "data").Bytes(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSet(b *testing.B) {
	srv := startServer(b)
	s := newStore(b, srv, nil)
	ctx := context.Background()
	for _, size := range benchSizes {
		value := bytes.Repeat([]byte("v"), size)
		b.Run(strconv.Itoa(size)+"B/store", func(b *testing.B) {
			req := &state.SetRequest{Key: "store", Value: value}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := s.Set(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(strconv.Itoa(size)+"B/store-etag", func(b *testing.B) {
			etag := mustSet(b, s, "etag", "v")
			req := &state.SetRequest{Key: "etag", Value: value, ETag: &etag}
			n, _ := strconv.ParseUint(etag, 10, 64)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := s.Set(ctx, req); err != nil {
					b.Fatal(err)
				}
				n++
				etag = strconv.FormatUint(n, 10)
			}
		})
		b.Run(strconv.Itoa(size)+"B/raw-HSET", func(b *testing.B) {
			raw := rawClient(b, srv)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := raw.HSet(ctx, "raw", "data", value).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParallel runs Get and Set from many goroutines, where requests
// share batches, with auto-pipelining on (the default) and off, beside a
// raw go-redis client doing HGET or HSET from as many goroutines.
// autopipelinebench compares auto-pipeliners.
func BenchmarkParallel(b *testing.B) {
	srv := startServer(b)
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), 64)
	const parallelism = 32 // times GOMAXPROCS goroutines
	for _, mode := range []string{"1", "0"} {
		s := newStore(b, srv, map[string]string{"autoPipelineBatches": mode})
		var keys atomic.Int64
		newKey := func() string { return "par" + strconv.FormatInt(keys.Add(1), 10) }
		b.Run("Get/autoPipelineBatches="+mode, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(parallelism)
			b.RunParallel(func(pb *testing.PB) {
				key := newKey()
				if err := s.Set(ctx, &state.SetRequest{Key: key, Value: value}); err != nil {
					b.Error(err)
					return
				}
				req := &state.GetRequest{Key: key}
				for pb.Next() {
					if _, err := s.Get(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run("Set/autoPipelineBatches="+mode, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(parallelism)
			b.RunParallel(func(pb *testing.PB) {
				req := &state.SetRequest{Key: newKey(), Value: value}
				for pb.Next() {
					if err := s.Set(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	raw := rawClient(b, srv)
	for _, op := range []string{"HGET", "HSET"} {
		b.Run("raw-"+op, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(parallelism)
			var keys atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				key := "rawpar" + strconv.FormatInt(keys.Add(1), 10)
				if err := raw.HSet(ctx, key, "data", value).Err(); err != nil {
					b.Error(err)
					return
				}
				for pb.Next() {
					var err error
					if op == "HGET" {
						err = raw.HGet(ctx, key, "data").Err()
					} else {
						err = raw.HSet(ctx, key, "data", value).Err()
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// rawClient is a plain go-redis client with the store's relevant options.
func rawClient(b *testing.B, srv *server) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	b.Cleanup(func() { c.Close() })
	return c
}
