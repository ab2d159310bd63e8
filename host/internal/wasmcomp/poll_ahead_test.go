package wasmcomp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
)

// TestPollAhead: a subscription of components-wasm/pubsub-redis, which
// declares POLL_AHEAD, is polled again while its first batch is still out
// with the app, up to two batches (64 messages) in flight and never more;
// the same module announcing ABI minor 2, or not declaring the feature, is
// polled only once its batch is settled (at most 32 in flight). Either way
// every message is delivered once, those the app asks to retry once more,
// and every one ends acknowledged in Redis.
func TestPollAhead(t *testing.T) {
	r := backendtest.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	for _, e := range testEngines {
		t.Run(e.name, func(t *testing.T) {
			l := newLoader(t, e)
			m := inspect(t, l, pubsubRedisPkg)
			minor2, undeclared := *m, *m
			minor2.Descriptor.ABIMinor = 2
			undeclared.Descriptor.Features = nil
			for _, c := range []struct {
				name   string
				mod    *wasmcomp.Module
				window int64
			}{
				{"poll-ahead", m, 64},
				{"minor-2", &minor2, 32},
				{"undeclared", &undeclared, 32},
			} {
				t.Run(c.name, func(t *testing.T) {
					topic := e.name + "-" + c.name
					checkWindow(t, rdb, topic, c.window, func() *wasmcomp.PubSub {
						p, err := l.NewPubSub(c.mod, "pr", "pubsub.redis", nil)
						return started(t, p, err, "pr", "pubsub.redis", map[string]string{"redisHost": r.Addr, "consumerGroup": "g"})
					})
				})
			}
		})
	}
}

// checkWindow publishes 160 messages to topic for consumer group g, starts
// a broker and subscribes, and holds every delivery until window are in
// flight at once (proving the host polled that far ahead), then lets them
// through; the most ever in flight must be window. Messages whose data ends
// in 7 are answered retry the first time.
func checkWindow(t *testing.T, rdb *redis.Client, topic string, window int64, start func() *wasmcomp.PubSub) {
	t.Helper()
	const total = 160
	ctx := context.Background()
	// Every message is in the stream before the first poll, so each poll
	// can fill a batch.
	if err := rdb.XGroupCreateMkStream(ctx, topic, "g", "0").Err(); err != nil {
		t.Fatal(err)
	}
	for n := range total {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: topic, Values: []any{"data", fmt.Sprintf("m-%d", n)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	p := start()
	var (
		inflight, most atomic.Int64
		gate           = make(chan struct{})
		open           sync.Once
		mu             sync.Mutex
		seen           = map[string]int{}
		accepted       = make(chan string, 2*total)
	)
	err := p.Subscribe(ctx, pubsub.SubscribeRequest{Topic: topic}, func(ctx context.Context, m *pubsub.Message) error {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for old := most.Load(); n > old && !most.CompareAndSwap(old, n); old = most.Load() {
		}
		if n >= window {
			open.Do(func() { close(gate) })
		}
		<-gate
		data := string(m.Data)
		mu.Lock()
		seen[data]++
		first := seen[data] == 1
		mu.Unlock()
		if first && strings.HasSuffix(data, "7") {
			return errors.New("retry")
		}
		accepted <- data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for got := 0; got < total; got++ {
		select {
		case <-accepted:
		case <-deadline:
			t.Fatalf("%d of %d messages accepted after 30s (%d in flight, at most %d)", got, total, inflight.Load(), most.Load())
		}
	}
	if got := most.Load(); got != window {
		t.Errorf("at most %d messages were in flight at once, want %d", got, window)
	}
	mu.Lock()
	for data, n := range seen {
		want := 1
		if strings.HasSuffix(data, "7") {
			want = 2
		}
		if n != want {
			t.Errorf("%s delivered %d times, want %d", data, n, want)
		}
	}
	mu.Unlock()
	// Every message ends acknowledged: nothing pending in the group.
	for {
		groups, err := rdb.XInfoGroups(ctx, topic).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(groups) == 1 && groups[0].Pending == 0 {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("messages still pending in Redis: %+v", groups)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
