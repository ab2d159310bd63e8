package wasmcomp_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
)

const pubsubRedisPkg = "./components-wasm/pubsub-redis"

// startPubSubRedis starts components-wasm/pubsub-redis (the module m, or
// the source's) on Redis at addr with annotations ann.
func startPubSubRedis(t testing.TB, l *wasmcomp.Loader, m *wasmcomp.Module, addr string, ann map[string]string) *wasmcomp.PubSub {
	t.Helper()
	if m == nil {
		m = inspect(t, l, pubsubRedisPkg)
	}
	p, err := l.NewPubSub(m, "pr", "pubsub.redis", ann)
	return started(t, p, err, "pr", "pubsub.redis", map[string]string{"redisHost": addr})
}

// TestPublishBatching: concurrent Publishes on a broker with one instance
// queue and are answered by bulk publishes; every publisher gets its own
// outcome (a publish to a key that is not a stream fails for its
// publisher only) and its messages land in the order it published them. A
// publish that finds the instance free runs alone. A guest of ABI minor 1
// is never sent a bulk publish.
func TestPublishBatching(t *testing.T) {
	r := backendtest.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	ctx := context.Background()
	for _, e := range testEngines {
		t.Run(e.name, func(t *testing.T) {
			l := newLoader(t, e)
			m := inspect(t, l, pubsubRedisPkg)
			p := startPubSubRedis(t, l, m, r.Addr, map[string]string{wasmcomp.AnnotationPoolSize: "1"})
			topic := e.name + "-orders"
			for n := range 5 {
				if err := p.Publish(ctx, &pubsub.PublishRequest{Topic: topic, Data: []byte("lone-" + strconv.Itoa(n))}); err != nil {
					t.Fatal(err)
				}
			}
			if p.BatchedPublishes() != 0 {
				t.Fatalf("%d Publishes batched while only one ran at a time", p.BatchedPublishes())
			}

			// 48 publishers share one topic; every fourth also publishes
			// every fifth message to a key of its own that holds a string,
			// which Redis refuses.
			const publishers, each = 48, 30
			var wg sync.WaitGroup
			errs := make(chan error, publishers)
			for w := range publishers {
				bad := fmt.Sprintf("%s-bad-%d", e.name, w)
				if err := rdb.Set(ctx, bad, "not a stream", 0).Err(); err != nil {
					t.Fatal(err)
				}
				wg.Go(func() {
					for n := range each {
						err := p.Publish(ctx, &pubsub.PublishRequest{Topic: topic, Data: fmt.Appendf(nil, "%d:%d", w, n), ContentType: "text/plain"})
						if err != nil {
							errs <- fmt.Errorf("publisher %d, message %d: %v", w, n, err)
							return
						}
						if w%4 != 0 || n%5 != 0 {
							continue
						}
						err = p.Publish(ctx, &pubsub.PublishRequest{Topic: bad, Data: []byte("x")})
						if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") || !strings.Contains(err.Error(), strconv.Quote(bad)) {
							errs <- fmt.Errorf("publisher %d: publish to %s (a string): %v, want its own WRONGTYPE error", w, bad, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if t.Failed() {
				return
			}
			if p.BatchedPublishes() == 0 {
				t.Fatal("48 concurrent publishers on one instance, and no Publish was batched")
			}
			st := p.WasmStats()
			var calls uint64
			for _, n := range st.Batches {
				calls += n
			}
			t.Logf("%d of %d Publishes answered by %d bulk publishes", p.BatchedPublishes(), publishers*each+publishers/4*(each/5), calls)
			if calls == 0 || st.BatchedRequests < uint64(p.BatchedPublishes()) {
				t.Errorf("stats after batching: %+v (%d bulk calls, %d publishes batched)", st, calls, p.BatchedPublishes())
			}

			// The stream holds every message once, each publisher's in the
			// order it published them.
			entries, err := rdb.XRange(ctx, topic, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			next := make([]int, publishers)
			lone := 0
			for _, en := range entries {
				data, _ := en.Values["data"].(string)
				if strings.HasPrefix(data, "lone-") {
					lone++
					continue
				}
				var w, n int
				if _, err := fmt.Sscanf(data, "%d:%d", &w, &n); err != nil || w < 0 || w >= publishers {
					t.Fatalf("unexpected entry %q", data)
				}
				if n != next[w] {
					t.Fatalf("publisher %d: message %d follows %d in the stream", w, n, next[w]-1)
				}
				next[w]++
			}
			for w, n := range next {
				if n != each {
					t.Errorf("publisher %d: %d of %d messages in the stream", w, n, each)
				}
			}
			if lone != 5 {
				t.Errorf("%d lone messages in the stream, want 5", lone)
			}

			// The same module, announcing ABI minor 1 as an older build of it
			// would: its publishes are never batched.
			old := *m
			old.Descriptor.ABIMinor = 1
			op := startPubSubRedis(t, l, &old, r.Addr, map[string]string{wasmcomp.AnnotationPoolSize: "1"})
			oldTopic := e.name + "-old"
			for w := range 32 {
				wg.Go(func() {
					for n := range 10 {
						if err := op.Publish(ctx, &pubsub.PublishRequest{Topic: oldTopic, Data: fmt.Appendf(nil, "%d:%d", w, n)}); err != nil {
							t.Errorf("minor 1 guest: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			st = op.WasmStats()
			for _, n := range st.Batches {
				if n != 0 || op.BatchedPublishes() != 0 {
					t.Fatalf("a guest of ABI minor 1 got bulk publishes: %+v", st)
				}
			}
			if n, err := rdb.XLen(ctx, oldTopic).Result(); err != nil || n != 320 {
				t.Fatalf("the minor 1 guest's stream holds %d entries (%v), want 320", n, err)
			}
		})
	}
}

// published is how many messages hangstore's broker instance says it
// published (its answer to a publish to "count").
func published(t *testing.T, p *wasmcomp.PubSub) int {
	t.Helper()
	err := p.Publish(context.Background(), &pubsub.PublishRequest{Topic: "count"})
	_, msg, _ := strings.Cut(fmt.Sprint(err), ": ")
	n, convErr := strconv.Atoi(msg)
	if !errors.Is(err, component.ErrInvalidArgument) || convErr != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// holdInstance publishes to topic (a "busy:<ms>" one) on its own goroutine
// and returns once that publish holds the pool's one instance; the channel
// gets its error.
func holdInstance(t *testing.T, p *wasmcomp.PubSub, topic string) <-chan error {
	t.Helper()
	busy := make(chan error, 1)
	go func() { busy <- p.Publish(context.Background(), &pubsub.PublishRequest{Topic: topic}) }()
	if err := backendtest.Eventually(5*time.Second, func() error {
		if st := p.WasmStats(); st.Busy != 1 {
			return fmt.Errorf("%d instances busy, want the one", st.Busy)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return busy
}

// TestPublishBatchFailures: a guest that answers bulk publishes
// NOT_SUPPORTED gets each of those publishes again alone, exactly once, and
// no bulk publish after; a bulk publish that breaks (here: runs past its
// deadline) fails every publish in it, and none is published again.
func TestPublishBatchFailures(t *testing.T) { perEngine(t, testPublishBatchFailures) }

func testPublishBatchFailures(t *testing.T, e testEngine) {
	ctx := context.Background()
	t.Run("not-supported", func(t *testing.T) {
		p := startHangPubSub(t, e, map[string]string{wasmcomp.AnnotationPoolSize: "1"}, map[string]string{"bulk": "false"})
		const publishers, each = 32, 20
		// The one instance is busy while the publishers queue behind it, so
		// a bulk publish is tried once it frees up.
		busy := holdInstance(t, p, "busy:1500")
		var wg sync.WaitGroup
		for range publishers {
			wg.Go(func() {
				for range each {
					if err := p.Publish(ctx, &pubsub.PublishRequest{Topic: "x"}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := <-busy; err != nil {
			t.Fatalf("the busy publish: %v", err)
		}
		if n := published(t, p); n != publishers*each+1 {
			t.Errorf("the guest published %d messages, want %d: each exactly once (and the busy one)", n, publishers*each+1)
		}
		var calls uint64
		for _, n := range p.WasmStats().Batches {
			calls += n
		}
		// At most the bulk publishes in flight when the first answer came.
		if p.BatchedPublishes() != 0 || calls == 0 || calls > 2 {
			t.Errorf("%d bulk publishes tried, %d publishes batched; want 1 or 2 tried, none batched", calls, p.BatchedPublishes())
		}
	})
	t.Run("broken", func(t *testing.T) {
		const timeout = 2 * time.Second
		p := startHangPubSub(t, e, map[string]string{wasmcomp.AnnotationPoolSize: "1", wasmcomp.AnnotationCallTimeout: timeout.String()}, nil)
		// The one instance is busy while 8 publishes queue behind it, one
		// to "loop": they are served by one bulk publish, which hangs.
		busy := holdInstance(t, p, "busy:1000")
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for k := range errs {
			wg.Go(func() {
				topic := "x"
				if k == 3 {
					topic = "loop"
				}
				errs[k] = p.Publish(ctx, &pubsub.PublishRequest{Topic: topic})
			})
		}
		wg.Wait()
		if err := <-busy; err != nil {
			t.Fatalf("the busy publish: %v", err)
		}
		for k, err := range errs {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("publish %d of the broken bulk publish: %v, want a deadline error", k, err)
			}
		}
		// The callers leave at their deadlines, maybe before the host has
		// stopped the call and discarded its instance.
		if err := backendtest.Eventually(5*time.Second, func() error {
			if st := p.WasmStats(); st.DeadlineStops != 1 || st.BatchedRequests != 8 {
				return fmt.Errorf("stats: %+v, want one bulk publish of 8 stopped at its deadline", st)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
		// A new instance serves, and was given none of them again.
		if n := published(t, p); n != 0 {
			t.Errorf("%d publishes of the broken bulk publish were published again", n)
		}
	})
}

// TestBulkPublishFromApp: an app's bulk publish to a guest of minor 2 goes
// out as bulk publish calls of at most 32 entries, landing in request
// order; a topic whose key is not a stream fails every entry with Redis's
// WRONGTYPE, named by entry; a guest of minor 1 publishes entry by entry.
func TestBulkPublishFromApp(t *testing.T) {
	r := backendtest.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	ctx := context.Background()
	entries := func(n int) []pubsub.BulkEntry {
		out := make([]pubsub.BulkEntry, n)
		for k := range out {
			out[k] = pubsub.BulkEntry{EntryID: "e" + strconv.Itoa(k), Data: []byte(strconv.Itoa(k)), ContentType: "text/plain"}
		}
		return out
	}
	inOrder := func(t *testing.T, topic string, n int) {
		t.Helper()
		got, err := rdb.XRange(ctx, topic, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%s holds %d entries, want %d", topic, len(got), n)
		}
		for k, en := range got {
			if en.Values["data"] != strconv.Itoa(k) {
				t.Fatalf("entry %d of %s is %v, want %d", k, topic, en.Values["data"], k)
			}
		}
	}
	for _, e := range testEngines {
		t.Run(e.name, func(t *testing.T) {
			l := newLoader(t, e)
			m := inspect(t, l, pubsubRedisPkg)
			p := startPubSubRedis(t, l, m, r.Addr, nil)
			topic := e.name + "-bulk"
			res, err := p.BulkPublish(ctx, &pubsub.BulkPublishRequest{Topic: topic, Entries: entries(70)})
			if err != nil || len(res.Failed) > 0 {
				t.Fatalf("bulk publish: %v %+v", err, res.Failed)
			}
			inOrder(t, topic, 70)
			st := p.WasmStats()
			var calls uint64
			for _, n := range st.Batches {
				calls += n
			}
			if calls != 3 || st.BatchedRequests != 70 {
				t.Errorf("70 entries took %d bulk calls carrying %d, want 3 carrying 70", calls, st.BatchedRequests)
			}

			bad := e.name + "-bulk-bad"
			if err := rdb.Set(ctx, bad, "not a stream", 0).Err(); err != nil {
				t.Fatal(err)
			}
			res, err = p.BulkPublish(ctx, &pubsub.BulkPublishRequest{Topic: bad, Entries: entries(5)})
			if err != nil || len(res.Failed) != 5 {
				t.Fatalf("bulk publish to a string key: %v, %d failed, want 5", err, len(res.Failed))
			}
			for k, f := range res.Failed {
				if f.EntryID != "e"+strconv.Itoa(k) || !strings.Contains(f.Err.Error(), "WRONGTYPE") {
					t.Errorf("failure %d: %s %v", k, f.EntryID, f.Err)
				}
			}

			old := *m
			old.Descriptor.ABIMinor = 1
			op := startPubSubRedis(t, l, &old, r.Addr, nil)
			oldTopic := e.name + "-bulk-old"
			res, err = op.BulkPublish(ctx, &pubsub.BulkPublishRequest{Topic: oldTopic, Entries: entries(40)})
			if err != nil || len(res.Failed) > 0 {
				t.Fatalf("bulk publish on a minor 1 guest: %v %+v", err, res.Failed)
			}
			inOrder(t, oldTopic, 40)
			if st := op.WasmStats(); st.BatchedRequests != 0 {
				t.Errorf("a guest of ABI minor 1 got bulk publishes: %+v", st)
			}

			// A guest that does not declare BULK_PUBSUB is refused as the
			// contract asks: the host publishes entry by entry itself.
			undeclared := *m
			undeclared.Descriptor.Features = []string{abi.FeaturePollAhead}
			up := startPubSubRedis(t, l, &undeclared, r.Addr, nil)
			if _, err := up.BulkPublish(ctx, &pubsub.BulkPublishRequest{Topic: e.name + "-bulk-undeclared", Entries: entries(2)}); !errors.Is(err, component.ErrNotSupported) {
				t.Errorf("bulk publish on a guest without BULK_PUBSUB: %v, want ErrNotSupported", err)
			}
		})
	}
}
