package memory_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/pubsub/memory"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
)

// wait is how long a test waits for something that must happen.
const wait = 10 * time.Second

// fast is metadata that keeps redelivery quick in tests.
var fast = map[string]string{"redeliverInitialInterval": "1ms", "redeliverMaxInterval": "4ms"}

// newPubSub returns an initialised broker closed at the end of the test.
func newPubSub(t testing.TB, props map[string]string) *memory.PubSub {
	t.Helper()
	p := memory.New()
	if err := p.Init(context.Background(), component.Metadata{Name: "pubsub", Type: "pubsub.in-memory", Properties: props}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func subscribe(t testing.TB, p *memory.PubSub, ctx context.Context, topic string, md map[string]string, h pubsub.Handler) {
	t.Helper()
	if err := p.Subscribe(ctx, pubsub.SubscribeRequest{Topic: topic, Metadata: md}, h); err != nil {
		t.Fatalf("Subscribe(%q): %v", topic, err)
	}
}

func publish(t testing.TB, p *memory.PubSub, topic, data string) {
	t.Helper()
	if err := p.Publish(context.Background(), &pubsub.PublishRequest{Topic: topic, Data: []byte(data)}); err != nil {
		t.Fatalf("Publish(%q, %q): %v", topic, data, err)
	}
}

// recv waits for a value on ch.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// closeNow closes p and waits for every goroutine, so what handlers recorded
// is final afterwards.
func closeNow(t testing.TB, p *memory.PubSub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// acks records the messages a handler accepted, by data.
type acks struct {
	mu   sync.Mutex
	n    map[string]int
	want int
	done chan struct{} // closed when want distinct messages were accepted
}

func newAcks(want int) *acks {
	return &acks{n: map[string]int{}, want: want, done: make(chan struct{})}
}

func (a *acks) ack(data string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n[data]++
	if len(a.n) == a.want && a.n[data] == 1 {
		close(a.done)
	}
}

func (a *acks) count(data string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[data]
}

func (a *acks) total() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.n {
		n += c
	}
	return n
}

func TestFeatures(t *testing.T) {
	p := memory.New()
	if !component.HasFeature(p.Features(), pubsub.FeatureBulkPublish) {
		t.Fatalf("Features() = %v, want %s", p.Features(), pubsub.FeatureBulkPublish)
	}
	for _, f := range []component.Feature{pubsub.FeatureMessageTTL, pubsub.FeatureSubscribeWildcards} {
		if component.HasFeature(p.Features(), f) {
			t.Errorf("Features() declares %s", f)
		}
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name  string
		props map[string]string
		bad   []string // fields reported, in order
	}{
		{name: "defaults"},
		{name: "all set", props: map[string]string{"concurrency": "1", "queueSize": "0", "redeliverInitialInterval": "1s", "redeliverMaxInterval": "1m"}},
		{name: "case-insensitive and bare milliseconds", props: map[string]string{"CONCURRENCY": "8", "redeliverinitialinterval": "5", "RedeliverMaxInterval": "5"}},
		{name: "zero concurrency", props: map[string]string{"concurrency": "0"}, bad: []string{"concurrency"}},
		{name: "huge queue", props: map[string]string{"queueSize": "1000000000"}, bad: []string{"queueSize"}},
		{name: "max below initial", props: map[string]string{"redeliverInitialInterval": "1s", "redeliverMaxInterval": "500ms"}, bad: []string{"redeliverMaxInterval"}},
		{name: "max below default initial", props: map[string]string{"redeliverMaxInterval": "1ms"}, bad: []string{"redeliverMaxInterval"}},
		{
			name:  "every problem at once",
			props: map[string]string{"concurrency": "many", "queueSize": "-1", "redeliverInitialInterval": "0", "redeliverMaxInterval": "later"},
			bad:   []string{"concurrency", "redeliverMaxInterval", "queueSize", "redeliverInitialInterval"},
		},
	}
	for _, tt := range tests {
		check := func(t *testing.T, err error) {
			t.Helper()
			if len(tt.bad) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *component.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, component.ErrInvalidArgument) {
				t.Fatalf("error = %v, want a *component.ConfigError", err)
			}
			var fields []string
			for _, p := range ce.Problems {
				fields = append(fields, p.Field)
			}
			if fmt.Sprint(fields) != fmt.Sprint(tt.bad) {
				t.Fatalf("problems with %v, want %v", fields, tt.bad)
			}
		}
		t.Run("component/"+tt.name, func(t *testing.T) {
			p := memory.New()
			defer p.Close(context.Background())
			check(t, p.Init(context.Background(), component.Metadata{Properties: tt.props}))
		})
		t.Run("subscription/"+tt.name, func(t *testing.T) {
			p := newPubSub(t, nil)
			err := p.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "t", Metadata: tt.props}, func(context.Context, *pubsub.Message) error { return nil })
			check(t, err)
			if err != nil && len(memory.Stopped(p, "t")) != 0 {
				t.Fatal("a refused subscription was registered")
			}
		})
	}
}

func TestSubscribeValidation(t *testing.T) {
	p := newPubSub(t, nil)
	h := func(context.Context, *pubsub.Message) error { return nil }
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		req  pubsub.SubscribeRequest
		h    pubsub.Handler
		want error
	}{
		{name: "empty topic", ctx: context.Background(), h: h, want: component.ErrInvalidArgument},
		{name: "nil handler", ctx: context.Background(), req: pubsub.SubscribeRequest{Topic: "t"}, want: component.ErrInvalidArgument},
		{name: "done context", ctx: cancelled, req: pubsub.SubscribeRequest{Topic: "t"}, h: h, want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := p.Subscribe(tt.ctx, tt.req, tt.h); !errors.Is(err, tt.want) {
				t.Fatalf("Subscribe = %v, want %v", err, tt.want)
			}
			if n := len(memory.Stopped(p, "t")); n != 0 {
				t.Fatalf("%d subscriptions registered", n)
			}
		})
	}
	if err := p.Publish(context.Background(), &pubsub.PublishRequest{Data: []byte("x")}); !errors.Is(err, component.ErrInvalidArgument) {
		t.Fatalf("Publish to an empty topic = %v", err)
	}
}

func TestFanOut(t *testing.T) {
	p := newPubSub(t, nil)
	ctx := context.Background()
	type delivery struct {
		sub int
		msg pubsub.Message
	}
	got := make(chan delivery, 10)
	release := make(chan struct{})
	for i := range 3 {
		subscribe(t, p, ctx, "orders", nil, func(_ context.Context, m *pubsub.Message) error {
			<-release // read only after the publisher has reused its buffers
			got <- delivery{i, pubsub.Message{Topic: m.Topic, Data: slices.Clone(m.Data), ContentType: m.ContentType, Metadata: maps.Clone(m.Metadata)}}
			return nil
		})
	}
	var other atomic.Int32
	subscribe(t, p, ctx, "other", nil, func(context.Context, *pubsub.Message) error { other.Add(1); return nil })

	data := []byte(`{"id":1}`)
	md := map[string]string{"traceparent": "00-abc"}
	if err := p.Publish(ctx, &pubsub.PublishRequest{Topic: "orders", Data: data, ContentType: "application/json", Metadata: md}); err != nil {
		t.Fatal(err)
	}
	copy(data, "CLOBBERED")
	md["traceparent"] = "changed"
	close(release)

	seen := map[int]bool{}
	for range 3 {
		d := recv(t, got, "a delivery")
		if seen[d.sub] {
			t.Fatalf("subscription %d got the message twice", d.sub)
		}
		seen[d.sub] = true
		want := pubsub.Message{Topic: "orders", Data: []byte(`{"id":1}`), ContentType: "application/json", Metadata: map[string]string{"traceparent": "00-abc"}}
		if d.msg.Topic != want.Topic || string(d.msg.Data) != string(want.Data) || d.msg.ContentType != want.ContentType || !maps.Equal(d.msg.Metadata, want.Metadata) {
			t.Fatalf("subscription %d got %+v, want %+v", d.sub, d.msg, want)
		}
	}
	closeNow(t, p)
	if len(got) != 0 || other.Load() != 0 {
		t.Fatalf("extra deliveries: %d on orders, %d on other", len(got), other.Load())
	}
}

func TestPublishWithoutSubscriberIsDropped(t *testing.T) {
	p := newPubSub(t, nil)
	publish(t, p, "t", "before")
	a := newAcks(1)
	subscribe(t, p, context.Background(), "t", nil, func(_ context.Context, m *pubsub.Message) error {
		a.ack(string(m.Data))
		return nil
	})
	publish(t, p, "t", "after")
	recv(t, a.done, "the message published after Subscribe")
	closeNow(t, p)
	if a.count("before") != 0 || a.total() != 1 {
		t.Fatalf("deliveries: %v", a.n)
	}
}

func TestRedeliveryAfterHandlerErrors(t *testing.T) {
	const messages = 20
	p := newPubSub(t, map[string]string{"redeliverInitialInterval": "2ms", "redeliverMaxInterval": "8ms"})
	var mu sync.Mutex
	attempts := map[string][]time.Time{}
	a := newAcks(messages)
	subscribe(t, p, context.Background(), "t", nil, func(_ context.Context, m *pubsub.Message) error {
		mu.Lock()
		attempts[string(m.Data)] = append(attempts[string(m.Data)], time.Now())
		n := len(attempts[string(m.Data)])
		mu.Unlock()
		if n <= 2 {
			return fmt.Errorf("attempt %d fails", n)
		}
		a.ack(string(m.Data))
		return nil
	})
	for i := range messages {
		publish(t, p, "t", strconv.Itoa(i))
	}
	recv(t, a.done, "every message acknowledged")
	closeNow(t, p)
	for i := range messages {
		at := attempts[strconv.Itoa(i)]
		if len(at) != 3 || a.count(strconv.Itoa(i)) != 1 {
			t.Fatalf("message %d: %d attempts, %d acks; want 3 and 1", i, len(at), a.count(strconv.Itoa(i)))
		}
		// Timers never fire early, so the backoff is a lower bound.
		if d := at[1].Sub(at[0]); d < 2*time.Millisecond {
			t.Errorf("message %d: first redelivery after %v, want >= 2ms", i, d)
		}
		if d := at[2].Sub(at[1]); d < 4*time.Millisecond {
			t.Errorf("message %d: second redelivery after %v, want >= 4ms", i, d)
		}
	}
}

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	tests := []struct{ d, limit, want time.Duration }{
		{10 * time.Millisecond, 2 * time.Second, 20 * time.Millisecond},
		{time.Second, 2 * time.Second, 2 * time.Second},
		{1500 * time.Millisecond, 2 * time.Second, 2 * time.Second},
		{2 * time.Second, 2 * time.Second, 2 * time.Second},
		{1 << 62, 1<<63 - 1, 1<<63 - 1}, // no overflow
	}
	for _, tt := range tests {
		if got := memory.NextDelay(tt.d, tt.limit); got != tt.want {
			t.Errorf("NextDelay(%v, %v) = %v, want %v", tt.d, tt.limit, got, tt.want)
		}
	}
}

func TestHandlerPanicIsRedelivered(t *testing.T) {
	p := newPubSub(t, fast)
	var calls atomic.Int32
	done := make(chan struct{})
	subscribe(t, p, context.Background(), "t", nil, func(context.Context, *pubsub.Message) error {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		close(done)
		return nil
	})
	publish(t, p, "t", "x")
	recv(t, done, "the redelivery after a panic")
	closeNow(t, p)
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
}

// TestNoLoss publishes from many goroutines through small queues to handlers
// that often fail: every subscription accepts every message exactly once.
func TestNoLoss(t *testing.T) {
	const publishers, perPublisher, subs = 8, 300, 3
	const total = publishers * perPublisher
	p := newPubSub(t, map[string]string{"queueSize": "4", "concurrency": "3", "redeliverInitialInterval": "1ms", "redeliverMaxInterval": "2ms"})
	all := make([]*acks, subs)
	for i := range subs {
		a := newAcks(total)
		all[i] = a
		var tries sync.Map // data -> *atomic.Int32
		subscribe(t, p, context.Background(), "t", nil, func(_ context.Context, m *pubsub.Message) error {
			n, _ := tries.LoadOrStore(string(m.Data), new(atomic.Int32))
			// A quarter of the messages fail once, a tenth twice.
			id, _ := strconv.Atoi(string(m.Data))
			try := n.(*atomic.Int32).Add(1)
			if (id%4 == 0 && try == 1) || (id%10 == 0 && try <= 2) {
				return errors.New("not now")
			}
			a.ack(string(m.Data))
			return nil
		})
	}
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for w := range publishers {
		wg.Go(func() {
			for i := range perPublisher {
				id := w*perPublisher + i
				if err := p.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t", Data: []byte(strconv.Itoa(id))}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, a := range all {
		recv(t, a.done, fmt.Sprintf("subscription %d to accept every message", i))
	}
	closeNow(t, p)
	for i, a := range all {
		if a.total() != total {
			t.Fatalf("subscription %d accepted %d messages, want %d once each", i, a.total(), total)
		}
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	const limit, messages = 3, 30
	p := newPubSub(t, map[string]string{"concurrency": strconv.Itoa(limit)})
	var inFlight, peak atomic.Int32
	started := make(chan struct{}, messages)
	release := make(chan struct{})
	a := newAcks(messages)
	subscribe(t, p, context.Background(), "t", nil, func(_ context.Context, m *pubsub.Message) error {
		n := inFlight.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		started <- struct{}{}
		<-release
		inFlight.Add(-1)
		a.ack(string(m.Data))
		return nil
	})
	for i := range messages {
		publish(t, p, "t", strconv.Itoa(i))
	}
	for range limit {
		recv(t, started, "a delivery to start")
	}
	close(release)
	recv(t, a.done, "every message acknowledged")
	if got := peak.Load(); got != limit {
		t.Fatalf("peak deliveries in flight = %d, want %d", got, limit)
	}
}

func TestSingleSlotKeepsOrder(t *testing.T) {
	const messages = 50
	p := newPubSub(t, map[string]string{"concurrency": "1", "redeliverInitialInterval": "1ms", "redeliverMaxInterval": "1ms"})
	var order []string
	var failed sync.Map
	a := newAcks(messages)
	subscribe(t, p, context.Background(), "t", nil, func(_ context.Context, m *pubsub.Message) error {
		id, _ := strconv.Atoi(string(m.Data))
		if _, again := failed.LoadOrStore(id, true); !again && id%5 == 0 {
			return errors.New("retry me")
		}
		order = append(order, string(m.Data)) // one delivery at a time
		a.ack(string(m.Data))
		return nil
	})
	for i := range messages {
		publish(t, p, "t", strconv.Itoa(i))
	}
	recv(t, a.done, "every message acknowledged")
	closeNow(t, p)
	for i, got := range order {
		if got != strconv.Itoa(i) {
			t.Fatalf("delivery %d was message %s; order %v", i, got, order)
		}
	}
}

func TestBackpressure(t *testing.T) {
	p := newPubSub(t, map[string]string{"queueSize": "1", "concurrency": "1"})
	started := make(chan string, 10)
	release := make(chan struct{})
	subscribe(t, p, context.Background(), "t", nil, func(_ context.Context, m *pubsub.Message) error {
		started <- string(m.Data)
		<-release
		return nil
	})
	publish(t, p, "t", "1")
	if got := recv(t, started, "the first delivery"); got != "1" {
		t.Fatalf("first delivery %q", got)
	}
	publish(t, p, "t", "2") // waits in the queue: the only slot is busy

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.Publish(cancelled, &pubsub.PublishRequest{Topic: "t", Data: []byte("3")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish into a full queue with a done context = %v, want context.Canceled", err)
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = p.Publish(short, &pubsub.PublishRequest{Topic: "t", Data: []byte("4")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish into a full queue past its deadline = %v, want context.DeadlineExceeded", err)
	}

	// A publisher that waits gets in once the handler makes room.
	published := make(chan error, 1)
	go func() {
		published <- p.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t", Data: []byte("5")})
	}()
	close(release)
	if err := recv(t, published, "the waiting Publish"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2", "5"} {
		if got := recv(t, started, "delivery "+want); got != want {
			t.Fatalf("delivered %q, want %q", got, want)
		}
	}
	closeNow(t, p)
	if len(started) != 0 {
		t.Fatalf("a refused message was delivered: %q", <-started)
	}
}

func TestCancelStopsDelivery(t *testing.T) {
	p := newPubSub(t, fast)
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	first := make(chan struct{})
	handlerSawCancel := make(chan struct{})
	subscribe(t, p, ctx, "t", map[string]string{"redeliverInitialInterval": "1h", "redeliverMaxInterval": "1h"}, func(hctx context.Context, m *pubsub.Message) error {
		if calls.Add(1) == 1 {
			close(first)
			<-hctx.Done() // the handler's context ends with the subscription
			close(handlerSawCancel)
		}
		return errors.New("never accepted")
	})
	other := newAcks(2)
	subscribe(t, p, context.Background(), "t", nil, func(_ context.Context, m *pubsub.Message) error {
		other.ack(string(m.Data))
		return nil
	})
	stopped := memory.Stopped(p, "t")
	if len(stopped) != 2 {
		t.Fatalf("%d subscriptions, want 2", len(stopped))
	}

	publish(t, p, "t", "1")
	recv(t, first, "the first delivery")
	cancel()
	recv(t, handlerSawCancel, "the handler's context to end")
	recv(t, stopped[0], "the cancelled subscription to stop")
	if n := len(memory.Stopped(p, "t")); n != 1 {
		t.Fatalf("%d subscriptions after cancel, want 1", n)
	}
	publish(t, p, "t", "2")
	recv(t, other.done, "both messages on the other subscription")
	closeNow(t, p)
	if n := calls.Load(); n != 1 {
		t.Fatalf("the cancelled subscription was called %d times, want 1", n)
	}
	if n := other.total(); n != 2 {
		t.Fatalf("the other subscription got %d messages, want 2", n)
	}
}

func TestCloseWaitsForHandlers(t *testing.T) {
	p := memory.New()
	if err := p.Init(context.Background(), component.Metadata{}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	var ctxDone atomic.Bool
	subscribe(t, p, context.Background(), "t", nil, func(ctx context.Context, _ *pubsub.Message) error {
		close(started)
		<-release // ignores its context, as a slow app would
		ctxDone.Store(ctx.Err() != nil)
		finished.Store(true)
		return nil
	})
	publish(t, p, "t", "x")
	recv(t, started, "the delivery")

	expired, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Close(expired); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a done context while a handler runs = %v, want context.Canceled", err)
	}

	closed := make(chan error, 1)
	go func() { closed <- p.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while a handler was running", err)
	default:
	}
	close(release)
	if err := recv(t, closed, "Close"); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Close returned before the handler did")
	}
	if !ctxDone.Load() {
		t.Fatal("the handler's context was not cancelled by Close")
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("third Close: %v", err)
	}
}

func TestCloseWakesBlockedPublisher(t *testing.T) {
	p := memory.New()
	if err := p.Init(context.Background(), component.Metadata{Properties: map[string]string{"queueSize": "0", "concurrency": "1"}}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	subscribe(t, p, context.Background(), "t", nil, func(context.Context, *pubsub.Message) error {
		close(started)
		<-release
		return nil
	})
	publish(t, p, "t", "1")
	recv(t, started, "the delivery")
	published := make(chan error, 1)
	go func() {
		published <- p.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t", Data: []byte("2")})
	}()

	closed := make(chan error, 1)
	go func() { closed <- p.Close(context.Background()) }()
	if err := recv(t, published, "the blocked Publish"); !errors.Is(err, component.ErrClosed) {
		t.Fatalf("blocked Publish after Close = %v, want ErrClosed", err)
	}
	close(release)
	if err := recv(t, closed, "Close"); err != nil {
		t.Fatal(err)
	}
}

func TestClosed(t *testing.T) {
	p := memory.New()
	ctx := context.Background()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close without Init: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	h := func(context.Context, *pubsub.Message) error { return nil }
	_, bulkErr := p.BulkPublish(ctx, &pubsub.BulkPublishRequest{Topic: "t", Entries: []pubsub.BulkEntry{{EntryID: "1"}}})
	for name, err := range map[string]error{
		"Init":        p.Init(ctx, component.Metadata{}),
		"Publish":     p.Publish(ctx, &pubsub.PublishRequest{Topic: "t"}),
		"Subscribe":   p.Subscribe(ctx, pubsub.SubscribeRequest{Topic: "t"}, h),
		"BulkPublish": bulkErr,
	} {
		if !errors.Is(err, component.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestBulkPublish(t *testing.T) {
	p := newPubSub(t, nil)
	got := make(chan pubsub.Message, 10)
	for range 2 {
		subscribe(t, p, context.Background(), "t", nil, func(_ context.Context, m *pubsub.Message) error {
			got <- pubsub.Message{Topic: m.Topic, Data: slices.Clone(m.Data), ContentType: m.ContentType, Metadata: maps.Clone(m.Metadata)}
			return nil
		})
	}
	resp, err := p.BulkPublish(context.Background(), &pubsub.BulkPublishRequest{
		Topic:    "t",
		Metadata: map[string]string{"batch": "b", "both": "batch"},
		Entries: []pubsub.BulkEntry{
			{EntryID: "1", Data: []byte("one"), ContentType: "text/plain", Metadata: map[string]string{"both": "entry"}},
			{EntryID: "2", Data: []byte("two")},
		},
	})
	if err != nil || len(resp.Failed) != 0 {
		t.Fatalf("BulkPublish = %+v, %v", resp, err)
	}
	want := map[string]pubsub.Message{
		"one": {Topic: "t", Data: []byte("one"), ContentType: "text/plain", Metadata: map[string]string{"batch": "b", "both": "entry"}},
		"two": {Topic: "t", Data: []byte("two"), Metadata: map[string]string{"batch": "b", "both": "batch"}},
	}
	count := map[string]int{}
	for range 4 {
		m := recv(t, got, "a delivery")
		w := want[string(m.Data)]
		if m.Topic != w.Topic || m.ContentType != w.ContentType || !maps.Equal(m.Metadata, w.Metadata) {
			t.Fatalf("delivered %+v, want %+v", m, w)
		}
		count[string(m.Data)]++
	}
	if count["one"] != 2 || count["two"] != 2 {
		t.Fatalf("deliveries %v, want each entry to each subscription", count)
	}

	resp, err = p.BulkPublish(context.Background(), &pubsub.BulkPublishRequest{Entries: []pubsub.BulkEntry{{EntryID: "a"}, {EntryID: "b"}}})
	if !errors.Is(err, component.ErrInvalidArgument) || len(resp.Failed) != 2 {
		t.Fatalf("BulkPublish to an empty topic = %+v, %v", resp, err)
	}
}

func TestBulkPublishBackpressure(t *testing.T) {
	const entries = 6
	p := newPubSub(t, map[string]string{"queueSize": "1", "concurrency": "1"})
	release := make(chan struct{})
	delivered := make(chan string, entries)
	subscribe(t, p, context.Background(), "t", nil, func(_ context.Context, m *pubsub.Message) error {
		<-release
		delivered <- string(m.Data)
		return nil
	})
	req := &pubsub.BulkPublishRequest{Topic: "t"}
	for i := range entries {
		req.Entries = append(req.Entries, pubsub.BulkEntry{EntryID: "e" + strconv.Itoa(i), Data: []byte(strconv.Itoa(i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	resp, err := p.BulkPublish(ctx, req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("BulkPublish into a stuck subscription = %v, want context.DeadlineExceeded", err)
	}
	// At most the queue and the delivery slot take entries; the rest fail,
	// in order.
	accepted := entries - len(resp.Failed)
	if accepted < 1 || accepted > 2 {
		t.Fatalf("%d entries accepted, want 1 or 2", accepted)
	}
	for i, f := range resp.Failed {
		if f.EntryID != "e"+strconv.Itoa(accepted+i) || !errors.Is(f.Err, context.DeadlineExceeded) {
			t.Fatalf("failure %d = %+v", i, f)
		}
	}
	close(release)
	for i := range accepted {
		if got := recv(t, delivered, "an accepted entry"); got != strconv.Itoa(i) {
			t.Fatalf("delivery %d was entry %s", i, got)
		}
	}
	closeNow(t, p)
	if len(delivered) != 0 {
		t.Fatalf("a failed entry was delivered: %s", <-delivered)
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, subs := range []int{1, 4} {
		b.Run(strconv.Itoa(subs)+"subs", func(b *testing.B) {
			p := newPubSub(b, nil)
			var delivered atomic.Int64
			for range subs {
				subscribe(b, p, context.Background(), "t", nil, func(context.Context, *pubsub.Message) error {
					delivered.Add(1)
					return nil
				})
			}
			ctx := context.Background()
			req := &pubsub.PublishRequest{Topic: "t", Data: []byte(`{"specversion":"1.0","data":"hello"}`), ContentType: "application/cloudevents+json"}
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Publish(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
