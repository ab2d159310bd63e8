package redis_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/builtin/pubsub/redis"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
)

// wait bounds how long a test waits for something that must happen.
const wait = 15 * time.Second

// server is a private redis-server with a raw client for inspecting it.
type server struct {
	*backendtest.Redis
	raw *goredis.Client
}

func startServer(t testing.TB) *server {
	t.Helper()
	r := backendtest.StartRedis(t)
	raw := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	t.Cleanup(func() { raw.Close() })
	return &server{Redis: r, raw: raw}
}

// newPubSub returns a broker initialised against srv with consumerID "app"
// unless props say otherwise, closed at the end of the test.
func newPubSub(t testing.TB, srv *server, props map[string]string) *redis.PubSub {
	t.Helper()
	md := component.Metadata{Name: "pubsub", Type: "pubsub.redis", Properties: map[string]string{"redisHost": srv.Addr, "consumerID": "app"}}
	maps.Copy(md.Properties, props)
	p := redis.New()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := p.Init(ctx, md); err != nil {
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

func subscribe(t testing.TB, p *redis.PubSub, ctx context.Context, topic string, h pubsub.Handler) {
	t.Helper()
	if err := p.Subscribe(ctx, pubsub.SubscribeRequest{Topic: topic}, h); err != nil {
		t.Fatalf("Subscribe(%q): %v", topic, err)
	}
}

func publish(t testing.TB, p *redis.PubSub, topic, data string) {
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
func closeNow(t testing.TB, p *redis.PubSub) {
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

func (a *acks) distinct() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.n)
}

func (a *acks) count(data string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[data]
}

func (a *acks) handler(_ context.Context, m *pubsub.Message) error {
	a.ack(string(m.Data))
	return nil
}

// pending returns the number of messages pending in group on stream.
func pending(t testing.TB, srv *server, stream, group string) int64 {
	t.Helper()
	p, err := srv.raw.XPending(context.Background(), stream, group).Result()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	return p.Count
}

// eventually calls f until it succeeds or wait passes, pausing briefly
// between attempts; it returns f's last error.
func eventually(f func() error) error { return backendtest.Eventually(wait, f) }

func TestFeatures(t *testing.T) {
	if fs := redis.New().Features(); len(fs) != 0 {
		t.Fatalf("Features() = %v, want none", fs)
	}
}

func TestPublishSubscribe(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, map[string]string{"concurrency": "1"}) // in order
	got := make(chan pubsub.Message, 10)
	subscribe(t, p, context.Background(), "orders", func(_ context.Context, m *pubsub.Message) error {
		got <- pubsub.Message{Topic: m.Topic, Data: append([]byte(nil), m.Data...), ContentType: m.ContentType, Metadata: maps.Clone(m.Metadata)}
		return nil
	})
	ctx := context.Background()
	want := []pubsub.Message{
		{Topic: "orders", Data: []byte(`{"id":1}`), ContentType: "application/cloudevents+json", Metadata: map[string]string{"ttlInSeconds": "10", "k": "v"}},
		{Topic: "orders", Data: []byte("plain")},
		{Topic: "orders", Data: []byte{}},
	}
	for _, m := range want {
		if err := p.Publish(ctx, &pubsub.PublishRequest{Topic: m.Topic, Data: m.Data, ContentType: m.ContentType, Metadata: m.Metadata}); err != nil {
			t.Fatal(err)
		}
	}
	for i, w := range want {
		m := recv(t, got, "message "+strconv.Itoa(i))
		if m.Topic != w.Topic || string(m.Data) != string(w.Data) || m.ContentType != w.ContentType || !maps.Equal(m.Metadata, w.Metadata) {
			t.Fatalf("message %d = %+v, want %+v", i, m, w)
		}
	}
	// Dapr's stream layout: data, and metadata as JSON.
	entries, err := srv.raw.XRange(ctx, "orders", "-", "+").Result()
	if err != nil || len(entries) != 3 {
		t.Fatalf("XRANGE = %v, %v", entries, err)
	}
	if v := entries[0].Values; v["data"] != `{"id":1}` || v["metadata"] != `{"k":"v","ttlInSeconds":"10"}` {
		t.Fatalf("stream entry %v", v)
	}
	if _, has := entries[1].Values["metadata"]; has {
		t.Fatalf("entry without metadata has %v", entries[1].Values)
	}
	// Acknowledged: nothing pending.
	if err := eventually(func() error {
		if n := pending(t, srv, "orders", "app"); n != 0 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestReadsDaprEntries checks that entries written as Dapr's pubsub.redis
// writes them are delivered.
func TestReadsDaprEntries(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, nil)
	got := make(chan *pubsub.Message, 1)
	subscribe(t, p, context.Background(), "t", func(_ context.Context, m *pubsub.Message) error {
		c := *m
		got <- &c
		return nil
	})
	err := srv.raw.XAdd(context.Background(), &goredis.XAddArgs{Stream: "t", Values: map[string]any{"data": "hello", "metadata": `{"a":"b"}`}}).Err()
	if err != nil {
		t.Fatal(err)
	}
	m := recv(t, got, "the message")
	if string(m.Data) != "hello" || m.Metadata["a"] != "b" {
		t.Fatalf("delivered %+v", m)
	}
}

// TestRetryInProcess checks that a message whose handler fails comes back
// quickly, without waiting for processingTimeout.
func TestRetryInProcess(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, nil) // processingTimeout 60s
	var calls atomic.Int32
	var first atomic.Int64 // Unix nanoseconds of the first call
	done := make(chan time.Duration, 1)
	subscribe(t, p, context.Background(), "t", func(context.Context, *pubsub.Message) error {
		first.CompareAndSwap(0, time.Now().UnixNano())
		if calls.Add(1) < 4 {
			return errors.New("RETRY")
		}
		done <- time.Since(time.Unix(0, first.Load()))
		return nil
	})
	publish(t, p, "t", "x")
	if d := recv(t, done, "the fourth delivery"); d > time.Second {
		t.Fatalf("three retries took %v", d)
	}
	if err := eventually(func() error {
		if n := pending(t, srv, "t", "app"); n != 0 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRetryWithoutReclaim turns reclaiming off: a failing message is
// retried in-process, with no deadline on the handler, until it succeeds.
func TestRetryWithoutReclaim(t *testing.T) {
	for _, props := range []map[string]string{{"processingTimeout": "0"}, {"redeliverInterval": "0"}} {
		t.Run(fmt.Sprint(props), func(t *testing.T) {
			srv := startServer(t)
			p := newPubSub(t, srv, props)
			var calls atomic.Int32
			var deadline atomic.Bool
			done := make(chan struct{})
			subscribe(t, p, context.Background(), "t", func(ctx context.Context, _ *pubsub.Message) error {
				if _, ok := ctx.Deadline(); ok {
					deadline.Store(true)
				}
				if calls.Add(1) < 6 {
					return errors.New("RETRY")
				}
				close(done)
				return nil
			})
			publish(t, p, "t", "x")
			recv(t, done, "the sixth delivery")
			if deadline.Load() {
				t.Fatal("the handler had a deadline with reclaiming off")
			}
		})
	}
}

func TestHandlerPanicIsRedelivered(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, nil)
	var calls atomic.Int32
	done := make(chan struct{})
	subscribe(t, p, context.Background(), "t", func(context.Context, *pubsub.Message) error {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		close(done)
		return nil
	})
	publish(t, p, "t", "x")
	recv(t, done, "the redelivery after a panic")
}

// TestNoLossWhileUnsubscribed publishes while no subscriber runs: a later
// subscriber in the same group gets every message.
func TestNoLossWhileUnsubscribed(t *testing.T) {
	srv := startServer(t)
	first := newPubSub(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	subscribe(t, first, ctx, "t", func(context.Context, *pubsub.Message) error { return nil }) // creates the group
	cancel()
	closeNow(t, first)

	publisher := newPubSub(t, srv, nil)
	const n = 20
	for i := range n {
		publish(t, publisher, "t", strconv.Itoa(i))
	}
	second := newPubSub(t, srv, nil)
	a := newAcks(n)
	subscribe(t, second, context.Background(), "t", a.handler)
	recv(t, a.done, "every message published while unsubscribed")
}

// TestFailedMessageSurvivesRestart leaves a message unacknowledged when the
// subscriber closes: a new subscriber in the same group delivers it.
func TestFailedMessageSurvivesRestart(t *testing.T) {
	srv := startServer(t)
	props := map[string]string{"processingTimeout": "200ms", "redeliverInterval": "50ms"}
	first := newPubSub(t, srv, props)
	failing := make(chan struct{}, 100)
	subscribe(t, first, context.Background(), "t", func(context.Context, *pubsub.Message) error {
		select {
		case failing <- struct{}{}:
		default:
		}
		return errors.New("not now")
	})
	publish(t, first, "t", "precious")
	recv(t, failing, "the failing delivery")
	closeNow(t, first)
	if n := pending(t, srv, "t", "app"); n != 1 {
		t.Fatalf("%d messages pending after Close, want 1", n)
	}

	second := newPubSub(t, srv, props)
	a := newAcks(1)
	subscribe(t, second, context.Background(), "t", a.handler)
	recv(t, a.done, "the message left by the closed subscriber")
	if n := a.count("precious"); n != 1 {
		t.Fatalf("accepted %d times", n)
	}
}

// TestHandBackOnStop stops a subscription that holds messages it could not
// deliver: another sidecar of the group gets them at its next reclaim pass,
// long before processingTimeout.
func TestHandBackOnStop(t *testing.T) {
	srv := startServer(t)
	props := map[string]string{"redeliverInterval": "100ms"} // processingTimeout 60s
	first := newPubSub(t, srv, props)
	failing := make(chan struct{}, 100)
	subscribe(t, first, context.Background(), "t", func(context.Context, *pubsub.Message) error {
		select {
		case failing <- struct{}{}:
		default:
		}
		return errors.New("not now")
	})
	second := newPubSub(t, srv, props)
	a := newAcks(3)
	for i := range 3 {
		publish(t, first, "t", strconv.Itoa(i))
	}
	recv(t, failing, "a failing delivery")
	start := time.Now()
	closeNow(t, first)
	// Subscribing after the first one stopped makes sure the messages are
	// all with the first sidecar.
	subscribe(t, second, context.Background(), "t", a.handler)
	recv(t, a.done, "the messages handed back")
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("handed-back messages took %v", d)
	}
}

// TestResubscribeAfterCancel replaces a subscription in the same sidecar:
// messages the old one took while stopping reach the new one quickly.
func TestResubscribeAfterCancel(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, nil) // redeliverInterval 15s
	for round := range 5 {
		topic := "t" + strconv.Itoa(round)
		ctx, cancel := context.WithCancel(context.Background())
		subscribe(t, p, ctx, topic, func(context.Context, *pubsub.Message) error { return nil })
		cancel()
		a := newAcks(20)
		subscribe(t, p, context.Background(), topic, a.handler)
		for i := range 20 {
			publish(t, p, topic, strconv.Itoa(i))
		}
		select {
		case <-a.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the new subscription got %d of 20 messages", round, a.distinct())
		}
	}
}

// TestReclaimFromDeadConsumer leaves a message pending with a consumer that
// never acknowledges (a crashed sidecar): it is reclaimed after
// processingTimeout and not before.
func TestReclaimFromDeadConsumer(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()
	if err := srv.raw.XGroupCreateMkStream(ctx, "t", "app", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := srv.raw.XAdd(ctx, &goredis.XAddArgs{Stream: "t", Values: []any{"data", "orphan"}}).Err(); err != nil {
		t.Fatal(err)
	}
	// Redis starts the message's idle time while it serves the read, so
	// the clock is read before sending it: no later than that start.
	orphaned := time.Now()
	read, err := srv.raw.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "app", Consumer: "crashed", Streams: []string{"t", ">"}, Block: -1}).Result()
	if err != nil || len(read[0].Messages) != 1 {
		t.Fatalf("XREADGROUP = %v, %v", read, err)
	}

	const timeout = 300 * time.Millisecond
	p := newPubSub(t, srv, map[string]string{"processingTimeout": "300", "redeliverInterval": "20"})
	got := make(chan time.Time, 1)
	subscribe(t, p, ctx, "t", func(_ context.Context, m *pubsub.Message) error {
		if string(m.Data) == "orphan" {
			got <- time.Now()
		}
		return nil
	})
	at := recv(t, got, "the reclaimed message")
	// Redis counts idle time in whole milliseconds of its own clock.
	if d := at.Sub(orphaned); d < timeout-2*time.Millisecond {
		t.Fatalf("reclaimed after %v, before processingTimeout %v", d, timeout)
	}
	if err := eventually(func() error {
		if n := pending(t, srv, "t", "app"); n != 0 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestGiveBackAndReclaim checks the handover from in-process retries to the
// reclaimer: a message that keeps failing is given back before
// processingTimeout and claimed again afterwards, with the handler's context
// bounded by processingTimeout.
func TestGiveBackAndReclaim(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, map[string]string{"processingTimeout": "200ms", "redeliverInterval": "20ms"})
	type call struct {
		at       time.Time
		deadline time.Time
	}
	calls := make(chan call, 1000)
	var first atomic.Int64 // Unix nanoseconds of the first call
	accepted := make(chan struct{})
	subscribe(t, p, context.Background(), "t", func(ctx context.Context, _ *pubsub.Message) error {
		dl, _ := ctx.Deadline()
		calls <- call{at: time.Now(), deadline: dl}
		// Fail for longer than processingTimeout, then accept.
		first.CompareAndSwap(0, time.Now().UnixNano())
		if time.Since(time.Unix(0, first.Load())) < 500*time.Millisecond {
			return errors.New("not yet")
		}
		close(accepted)
		return nil
	})
	publish(t, p, "t", "x")
	recv(t, accepted, "the message to be accepted")
	closeNow(t, p)
	close(calls)
	var deadlines []time.Time
	for c := range calls {
		if c.deadline.IsZero() || c.deadline.Sub(c.at) > 200*time.Millisecond {
			t.Fatalf("handler called at %v with deadline %v, want at most processingTimeout", c.at, c.deadline)
		}
		if len(deadlines) == 0 || !c.deadline.Equal(deadlines[len(deadlines)-1]) {
			deadlines = append(deadlines, c.deadline)
		}
	}
	// Each claim (the first read, then reclaims) starts a new deadline.
	if len(deadlines) < 2 {
		t.Fatalf("one claim only; deadlines %v", deadlines)
	}
	info, err := srv.raw.XInfoGroups(context.Background(), "t").Result()
	if err != nil || len(info) != 1 || info[0].Pending != 0 {
		t.Fatalf("groups %+v, %v", info, err)
	}
}

func TestRedisRestart(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, map[string]string{"maxRetries": "1"})
	got := make(chan string, 10)
	subscribe(t, p, context.Background(), "t", func(_ context.Context, m *pubsub.Message) error {
		got <- string(m.Data)
		return nil
	})
	publish(t, p, "t", "before")
	if m := recv(t, got, "the message before the restart"); m != "before" {
		t.Fatalf("got %q", m)
	}

	srv.Kill()
	err := p.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t", Data: []byte("down")})
	if !errors.Is(err, component.ErrUnavailable) || !strings.Contains(err.Error(), `"pubsub"`) || !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("Publish with Redis down = %v; want ErrUnavailable naming the component and %s", err, srv.Addr)
	}
	srv.Start()
	err = eventually(func() error {
		return p.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t", Data: []byte("after")})
	})
	if err != nil {
		t.Fatalf("Publish after the restart: %v", err)
	}
	if m := recv(t, got, "the message after the restart"); m != "after" {
		t.Fatalf("got %q", m)
	}
}

// TestGroupDeleted deletes the stream under a subscription: it recreates
// the group and goes on.
func TestGroupDeleted(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, nil)
	got := make(chan string, 10)
	subscribe(t, p, context.Background(), "t", func(_ context.Context, m *pubsub.Message) error {
		got <- string(m.Data)
		return nil
	})
	if err := srv.raw.Del(context.Background(), "t").Err(); err != nil {
		t.Fatal(err)
	}
	// Until the subscription notices, publishing creates a stream without the
	// group; recreating the group at 0 still finds the message.
	publish(t, p, "t", "after")
	if m := recv(t, got, "the message after the stream was deleted"); m != "after" {
		t.Fatalf("got %q", m)
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	const limit, messages = 3, 12
	srv := startServer(t)
	p := newPubSub(t, srv, map[string]string{"concurrency": strconv.Itoa(limit)})
	var inFlight, peak atomic.Int32
	started := make(chan struct{}, messages)
	release := make(chan struct{})
	a := newAcks(messages)
	subscribe(t, p, context.Background(), "t", func(_ context.Context, m *pubsub.Message) error {
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

// TestQueueDepthBoundsHeldMessages checks that a subscription takes no more
// messages from Redis than queueDepth while its handlers are busy.
func TestQueueDepthBoundsHeldMessages(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, map[string]string{"concurrency": "1", "queueDepth": "3"})
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	a := newAcks(10)
	subscribe(t, p, context.Background(), "t", func(_ context.Context, m *pubsub.Message) error {
		started <- struct{}{}
		<-release
		a.ack(string(m.Data))
		return nil
	})
	for i := range 10 {
		publish(t, p, "t", strconv.Itoa(i))
	}
	recv(t, started, "the first delivery")
	// The reader fills the free slots; give it the time to try for more.
	if err := eventually(func() error {
		if n := pending(t, srv, "t", "app"); n != 3 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	close(release)
	recv(t, a.done, "every message")
}

func TestSingleSlotKeepsOrder(t *testing.T) {
	const messages = 20
	srv := startServer(t)
	p := newPubSub(t, srv, map[string]string{"concurrency": "1"})
	var order []string
	var failed sync.Map
	a := newAcks(messages)
	subscribe(t, p, context.Background(), "t", func(_ context.Context, m *pubsub.Message) error {
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

func TestCancelStopsDelivery(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan struct{})
	handlerSawCancel := make(chan struct{})
	var calls atomic.Int32
	subscribe(t, p, ctx, "a", func(hctx context.Context, _ *pubsub.Message) error {
		if calls.Add(1) == 1 {
			close(first)
			<-hctx.Done() // the handler's context ends with the subscription
			close(handlerSawCancel)
		}
		return errors.New("never accepted")
	})
	other := newAcks(2)
	subscribe(t, p, context.Background(), "b", other.handler)

	publish(t, p, "a", "1")
	recv(t, first, "the first delivery")
	cancel()
	recv(t, handlerSawCancel, "the handler's context to end")
	publish(t, p, "b", "1")
	publish(t, p, "b", "2")
	recv(t, other.done, "both messages on the other subscription")
	closeNow(t, p)
	if n := calls.Load(); n != 1 {
		t.Fatalf("the cancelled subscription was called %d times, want 1", n)
	}
	// The failed message is still pending for the group.
	if n := pending(t, srv, "a", "app"); n != 1 {
		t.Fatalf("%d pending on a, want 1", n)
	}
}

func TestCloseWaitsForHandlers(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, nil)
	started := make(chan struct{})
	release := make(chan struct{})
	var finished, ctxDone atomic.Bool
	subscribe(t, p, context.Background(), "t", func(ctx context.Context, _ *pubsub.Message) error {
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
	if !finished.Load() || !ctxDone.Load() {
		t.Fatalf("Close returned with handler finished=%v, its context done=%v", finished.Load(), ctxDone.Load())
	}
	// The handler succeeded during shutdown: its message was acknowledged.
	if n := pending(t, srv, "t", "app"); n != 0 {
		t.Fatalf("%d pending after Close", n)
	}
}

// TestConsumerRemoved checks that a subscription that ends with nothing
// pending leaves no consumer behind, and one with pending messages keeps it.
func TestConsumerRemoved(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, nil)
	ok := newAcks(1)
	subscribe(t, p, context.Background(), "clean", ok.handler)
	fails := make(chan struct{}, 100)
	subscribe(t, p, context.Background(), "dirty", func(context.Context, *pubsub.Message) error {
		select {
		case fails <- struct{}{}:
		default:
		}
		return errors.New("no")
	})
	publish(t, p, "clean", "x")
	publish(t, p, "dirty", "x")
	recv(t, ok.done, "the clean message")
	recv(t, fails, "the dirty message")
	closeNow(t, p)
	ctx := context.Background()
	for topic, want := range map[string]int{"clean": 0, "dirty": 1} {
		cs, err := srv.raw.XInfoConsumers(ctx, topic, "app").Result()
		if err != nil || len(cs) != want {
			t.Errorf("consumers on %s: %+v, %v; want %d", topic, cs, err, want)
		}
	}
}

// TestDefaultConsumerID checks the group made up when consumerID is not set:
// named after the process, starting at the end of the stream.
func TestDefaultConsumerID(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()
	if err := srv.raw.XAdd(ctx, &goredis.XAddArgs{Stream: "t", Values: []any{"data", "history"}}).Err(); err != nil {
		t.Fatal(err)
	}
	p := redis.New()
	if err := p.Init(ctx, component.Metadata{Properties: map[string]string{"redisHost": srv.Addr}}); err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, p)
	got := make(chan string, 10)
	subscribe(t, p, ctx, "t", func(_ context.Context, m *pubsub.Message) error {
		got <- string(m.Data)
		return nil
	})
	publish(t, p, "t", "new")
	if m := recv(t, got, "the new message"); m != "new" {
		t.Fatalf("first delivery %q, want only messages published after Subscribe", m)
	}
	host, _ := os.Hostname()
	groups, err := srv.raw.XInfoGroups(ctx, "t").Result()
	if err != nil || len(groups) != 1 || groups[0].Name != host+"-"+strconv.Itoa(os.Getpid()) {
		t.Fatalf("groups %+v, %v", groups, err)
	}
}

func TestMaxLenApprox(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, map[string]string{"maxLenApprox": "100"})
	for i := range 1000 {
		publish(t, p, "t", strconv.Itoa(i))
	}
	n, err := srv.raw.XLen(context.Background(), "t").Result()
	if err != nil || n < 100 || n > 300 {
		t.Fatalf("XLEN = %d, %v; want about 100", n, err)
	}
}

func TestWrongTypeTopic(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, nil)
	ctx := context.Background()
	if err := srv.raw.Set(ctx, "plain", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	err := p.Publish(ctx, &pubsub.PublishRequest{Topic: "plain", Data: []byte("x")})
	if err == nil || errors.Is(err, component.ErrUnavailable) || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("Publish to a string key = %v", err)
	}
	err = p.Subscribe(ctx, pubsub.SubscribeRequest{Topic: "plain"}, func(context.Context, *pubsub.Message) error { return nil })
	if err == nil || errors.Is(err, component.ErrUnavailable) {
		t.Fatalf("Subscribe to a string key = %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	srv := startServer(t)
	p := newPubSub(t, srv, nil)
	ctx := context.Background()
	h := func(context.Context, *pubsub.Message) error { return nil }
	for name, err := range map[string]error{
		"Publish without topic":   p.Publish(ctx, &pubsub.PublishRequest{}),
		"Subscribe without topic": p.Subscribe(ctx, pubsub.SubscribeRequest{}, h),
		"Subscribe without h":     p.Subscribe(ctx, pubsub.SubscribeRequest{Topic: "t"}, nil),
	} {
		if !errors.Is(err, component.ErrInvalidArgument) {
			t.Errorf("%s = %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestInitUnreachable(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(backendtest.FreePort(t))
	p := redis.New()
	defer p.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := p.Init(ctx, component.Metadata{Name: "events", Properties: map[string]string{"redisHost": addr}})
	if !errors.Is(err, component.ErrUnavailable) || !strings.Contains(err.Error(), `pubsub.redis "events"`) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Init against nothing = %v; want ErrUnavailable naming the component and %s", err, addr)
	}
}

func TestInitWrongPassword(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()
	if err := srv.raw.ConfigSet(ctx, "requirepass", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "guess"} {
		p := redis.New()
		err := p.Init(ctx, component.Metadata{Name: "events", Properties: map[string]string{"redisHost": srv.Addr, "redisPassword": pw}})
		p.Close(ctx)
		if err == nil || !strings.Contains(err.Error(), `"events"`) || !strings.Contains(err.Error(), "credentials") {
			t.Fatalf("Init with password %q = %v; want an error about the credentials naming the component", pw, err)
		}
	}
}

func TestClosed(t *testing.T) {
	srv := startServer(t)
	p := redis.New()
	ctx := context.Background()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close without Init: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	h := func(context.Context, *pubsub.Message) error { return nil }
	for name, err := range map[string]error{
		"Init":      p.Init(ctx, component.Metadata{Properties: map[string]string{"redisHost": srv.Addr}}),
		"Publish":   p.Publish(ctx, &pubsub.PublishRequest{Topic: "t"}),
		"Subscribe": p.Subscribe(ctx, pubsub.SubscribeRequest{Topic: "t"}, h),
	} {
		if !errors.Is(err, component.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	q := newPubSub(t, srv, nil)
	closeNow(t, q)
	if err := q.Publish(ctx, &pubsub.PublishRequest{Topic: "t"}); !errors.Is(err, component.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
}

func TestNotInitialised(t *testing.T) {
	p := redis.New()
	if err := p.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t"}); err == nil {
		t.Fatal("Publish before Init succeeded")
	}
}

// TestNoLoss publishes from several goroutines to handlers that often fail:
// every message is accepted.
func TestNoLoss(t *testing.T) {
	const publishers, perPublisher = 4, 100
	const total = publishers * perPublisher
	srv := startServer(t)
	p := newPubSub(t, srv, map[string]string{"queueDepth": "8", "concurrency": "4"})
	a := newAcks(total)
	var tries sync.Map // data -> *atomic.Int32
	subscribe(t, p, context.Background(), "t", func(_ context.Context, m *pubsub.Message) error {
		n, _ := tries.LoadOrStore(string(m.Data), new(atomic.Int32))
		id, _ := strconv.Atoi(string(m.Data))
		try := n.(*atomic.Int32).Add(1)
		if (id%4 == 0 && try == 1) || (id%10 == 0 && try <= 2) {
			return errors.New("not now")
		}
		a.ack(string(m.Data))
		return nil
	})
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
	recv(t, a.done, "every message accepted")
}
