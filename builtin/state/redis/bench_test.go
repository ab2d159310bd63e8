package redis_test

import (
	"bytes"
	"context"
	"strconv"
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

// rawClient is a plain go-redis client with the store's relevant options.
func rawClient(b *testing.B, srv *server) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	b.Cleanup(func() { c.Close() })
	return c
}
