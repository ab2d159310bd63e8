package redis_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/host/component/pubsub"
)

// The benchmarks run the broker and a raw go-redis client side by side on
// the same private server, so their ratio shows what the driver adds.

var benchPayload = []byte(`{"specversion":"1.0","type":"com.dapr.event.sent","source":"app","id":"5929aaac-a5e2-4ca1-859c-edfe73f11565","datacontenttype":"application/json","data":{"orderId":42}}`)

func BenchmarkPublish(b *testing.B) {
	srv := startServer(b)
	ctx := context.Background()
	b.Run("broker", func(b *testing.B) {
		p := newPubSub(b, srv, nil)
		req := &pubsub.PublishRequest{Topic: "broker", Data: benchPayload, ContentType: "application/cloudevents+json"}
		b.ReportAllocs()
		b.SetBytes(int64(len(benchPayload)))
		for b.Loop() {
			if err := p.Publish(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-XADD", func(b *testing.B) {
		raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
		defer raw.Close()
		b.ReportAllocs()
		b.SetBytes(int64(len(benchPayload)))
		for b.Loop() {
			if err := raw.XAdd(ctx, &goredis.XAddArgs{Stream: "raw", Values: []any{"data", benchPayload, "contentType", "application/cloudevents+json"}}).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPublishToHandler measures throughput from Publish to an
// acknowledged delivery: b.N messages published by one goroutine while the
// subscription consumes them. The raw baseline does the same with XADD, and
// XREADGROUP plus one XACK per message.
// rawStreams numbers the raw baseline's streams, one per run.
var rawStreams atomic.Int64

func BenchmarkPublishToHandler(b *testing.B) {
	srv := startServer(b)
	ctx := context.Background()
	b.Run("broker", func(b *testing.B) {
		p := newPubSub(b, srv, nil)
		var got atomic.Int64
		var want atomic.Int64
		done := make(chan struct{}, 1)
		subscribe(b, p, ctx, "broker", func(context.Context, *pubsub.Message) error {
			if got.Add(1) == want.Load() {
				done <- struct{}{}
			}
			return nil
		})
		req := &pubsub.PublishRequest{Topic: "broker", Data: benchPayload}
		b.ReportAllocs()
		b.SetBytes(int64(len(benchPayload)))
		b.ResetTimer()
		want.Store(got.Load() + int64(b.N))
		for range b.N {
			if err := p.Publish(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
		recv(b, done, "every message")
	})
	b.Run("raw", func(b *testing.B) {
		pub := goredis.NewClient(&goredis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
		defer pub.Close()
		sub := goredis.NewClient(&goredis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
		defer sub.Close()
		stream := "raw" + strconv.FormatInt(rawStreams.Add(1), 10)
		if err := pub.XGroupCreateMkStream(ctx, stream, "g", "$").Err(); err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		b.ReportAllocs()
		b.SetBytes(int64(len(benchPayload)))
		b.ResetTimer()
		go func() {
			for n := 0; n < b.N; {
				res, err := sub.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{stream, ">"}, Count: 100, Block: 0}).Result()
				if err != nil {
					done <- err
					return
				}
				for _, m := range res[0].Messages {
					if err := sub.XAck(ctx, stream, "g", m.ID).Err(); err != nil {
						done <- err
						return
					}
					n++
				}
			}
			done <- nil
		}()
		for range b.N {
			if err := pub.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"data", benchPayload}}).Err(); err != nil {
				b.Fatal(err)
			}
		}
		if err := recv(b, done, "every message"); err != nil {
			b.Fatal(err)
		}
	})
}
