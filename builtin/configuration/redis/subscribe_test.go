package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/builtin/configuration/redis"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/configuration"
)

// recorder is a subscription's handler: it queues the updates about keys
// with its prefix and counts calls made after the test marked the
// subscription as stopped.
type recorder struct {
	prefix  string
	updates chan *configuration.Update
	id      atomic.Pointer[string]
	stopped atomic.Bool
	late    atomic.Int64 // calls after stopped was set
	badID   atomic.Int64 // updates whose id was not the subscription's
}

func newRecorder(prefix string) *recorder {
	return &recorder{prefix: prefix, updates: make(chan *configuration.Update, 256)}
}

func (r *recorder) handle(ctx context.Context, u *configuration.Update) error {
	if r.stopped.Load() {
		r.late.Add(1)
	}
	if id := r.id.Load(); id != nil && u.ID != *id {
		r.badID.Add(1)
	}
	for k := range u.Items {
		if !strings.HasPrefix(k, r.prefix) {
			return nil // another test's key, seen by an every-key subscription
		}
	}
	select {
	case r.updates <- u:
	case <-ctx.Done():
	}
	return nil
}

// subscribe subscribes r to keys (every key when none) and checks, when
// the test ends, that r was never called after it was stopped and only
// ever saw its own id.
func subscribe(t testing.TB, s *redis.Store, r *recorder, keys ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	id, err := s.Subscribe(ctx, &configuration.SubscribeRequest{Keys: keys}, r.handle)
	if err != nil {
		t.Fatalf("Subscribe(%v): %v", keys, err)
	}
	r.id.Store(&id)
	t.Cleanup(func() {
		if n := r.late.Load(); n > 0 {
			t.Errorf("subscription %s: handler called %d times after it was stopped", id, n)
		}
		if n := r.badID.Load(); n > 0 {
			t.Errorf("subscription %s: %d updates carried another id", id, n)
		}
	})
	return id
}

// unsubscribe stops id and marks r stopped; the mark is set only once
// Unsubscribe returned, so a later call counts as late.
func unsubscribe(t testing.TB, s *redis.Store, r *recorder, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := s.Unsubscribe(ctx, id); err != nil {
		t.Fatalf("Unsubscribe(%s): %v", id, err)
	}
	r.stopped.Store(true)
}

// next returns r's next update, failing when none comes within limit.
func (r *recorder) next(t testing.TB, limit time.Duration) *configuration.Update {
	t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case u := <-r.updates:
		return u
	case <-timer.C:
		t.Fatalf("no update within %v", limit)
		return nil
	}
}

// expect checks that r's next update is exactly key → it.
func (r *recorder) expect(t testing.TB, limit time.Duration, key string, it *configuration.Item) {
	t.Helper()
	u := r.next(t, limit)
	want := map[string]*configuration.Item{key: it}
	if !sameItems(u.Items, want) {
		t.Fatalf("update %s, want %s", show(u.Items), show(want))
	}
}

// expectUntil reads r's updates, each of which must be about key, until
// one is it.
func (r *recorder) expectUntil(t testing.TB, key string, it *configuration.Item) {
	t.Helper()
	want := map[string]*configuration.Item{key: it}
	deadline := time.Now().Add(wait)
	for {
		u := r.next(t, time.Until(deadline))
		if _, ok := u.Items[key]; !ok || len(u.Items) != 1 {
			t.Fatalf("update %s, want only %s", show(u.Items), key)
		}
		if sameItems(u.Items, want) {
			return
		}
	}
}

// untilFence reads r's updates, each about key or fence, until one about
// fence.
func (r *recorder) untilFence(t testing.TB, key, fence string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		u := r.next(t, time.Until(deadline))
		if _, ok := u.Items[fence]; ok && len(u.Items) == 1 {
			return
		}
		if _, ok := u.Items[key]; !ok || len(u.Items) != 1 {
			t.Fatalf("update %s, want only %s or %s", show(u.Items), key, fence)
		}
	}
}

// expectNone checks that r has no update queued.
func (r *recorder) expectNone(t testing.TB) {
	t.Helper()
	select {
	case u := <-r.updates:
		t.Fatalf("unexpected update %s", show(u.Items))
	default:
	}
}

var empty = &configuration.Item{}

func TestSubscribeEvents(t *testing.T) {
	requireRedis(t)
	raw := rawClient(t, sharedAddr)
	s := newStore(t, sharedAddr, nil)

	tests := []struct {
		name    string
		prepare []any // a command run before subscribing, if any
		act     []any // the change; "K" stands for the key
		want    *configuration.Item
		exact   bool // the first update is want; else updates about the key until want
	}{
		{name: "set", act: []any{"set", "K", "blue||7"}, want: item("blue", "7"), exact: true},
		{name: "set without version", act: []any{"set", "K", "blue"}, want: item("blue", ""), exact: true},
		{name: "append", prepare: []any{"set", "K", "blu"}, act: []any{"append", "K", "e||2"}, want: item("blue", "2"), exact: true},
		{name: "del", prepare: []any{"set", "K", "blue||7"}, act: []any{"del", "K"}, want: empty, exact: true},
		{name: "unlink", prepare: []any{"set", "K", "blue||7"}, act: []any{"unlink", "K"}, want: empty, exact: true},
		{name: "getdel", prepare: []any{"set", "K", "blue||7"}, act: []any{"getdel", "K"}, want: empty, exact: true},
		{name: "empty value counts as deleted", prepare: []any{"set", "K", "blue||7"}, act: []any{"set", "K", "||8"}, want: empty, exact: true},
		{name: "expired", act: []any{"set", "K", "blue||7", "px", "50"}, want: empty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newKeys(t, raw).key("k")
			subst := func(args []any) []any {
				out := make([]any, len(args))
				for i, a := range args {
					if a == "K" {
						a = key
					}
					out[i] = a
				}
				return out
			}
			if tt.prepare != nil {
				do(t, raw, subst(tt.prepare)...)
			}
			r := newRecorder(key)
			subscribe(t, s, r, key)
			start := time.Now()
			do(t, raw, subst(tt.act)...)
			if !tt.exact {
				r.expectUntil(t, key, tt.want)
				return
			}
			r.expect(t, time.Second, key, tt.want)
			t.Logf("reported after %v", time.Since(start))
		})
	}
}

// TestSubscribeOwnKeys checks that subscriptions on different keys see only
// their own. Redis pushes one subscription's notifications in the order of
// the commands, so a fence written last proves nothing else came before it.
// A stray update would make expectUntil fail.
func TestSubscribeOwnKeys(t *testing.T) {
	requireRedis(t)
	raw := rawClient(t, sharedAddr)
	s := newStore(t, sharedAddr, nil)
	k := newKeys(t, raw)
	a, b := k.key("a"), k.key("b")
	ra, rb := newRecorder(k.prefix), newRecorder(k.prefix)
	subscribe(t, s, ra, a)
	subscribe(t, s, rb, b)

	do(t, raw, "set", a, "1")
	do(t, raw, "set", b, "1")
	do(t, raw, "set", a, "fence")
	do(t, raw, "set", b, "fence")
	// Each event makes the subscription read the key, which may already
	// hold the fence; every update must be about the subscription's key.
	ra.expectUntil(t, a, item("fence", ""))
	rb.expectUntil(t, b, item("fence", ""))
}

// TestSubscribeEveryKey checks a subscription without keys, through a
// rename (the old key is reported deleted, the new one set) and a hash,
// which is not an item.
func TestSubscribeEveryKey(t *testing.T) {
	requireRedis(t)
	raw := rawClient(t, sharedAddr)
	s := newStore(t, sharedAddr, nil)
	k := newKeys(t, raw)
	a, b, h := k.key("a"), k.key("b"), k.key("h")
	r := newRecorder(k.prefix)
	subscribe(t, s, r)

	do(t, raw, "set", a, "blue||1")
	r.expect(t, time.Second, a, item("blue", "1"))
	do(t, raw, "rename", a, b)
	r.expect(t, time.Second, a, empty)
	r.expect(t, time.Second, b, item("blue", "1"))
	do(t, raw, "hset", h, "f", "v")
	do(t, raw, "set", b, "fence")
	r.expect(t, time.Second, b, item("fence", ""))
}

// TestSubscribeIgnoresOtherTypes turns on every event class, as an operator
// may have, and checks that changes to a hash are not reported.
func TestSubscribeIgnoresOtherTypes(t *testing.T) {
	srv := backendtest.StartRedis(t)
	raw := rawClient(t, srv.Addr)
	do(t, raw, "config", "set", "notify-keyspace-events", "KEA")
	s := newStore(t, srv.Addr, nil)
	r := newRecorder("")
	subscribe(t, s, r, "h", "fence")
	do(t, raw, "hset", "h", "f", "v")
	do(t, raw, "lpush", "l", "v")
	do(t, raw, "set", "fence", "1")
	r.expect(t, time.Second, "fence", item("1", ""))
	r.expectNone(t)
}

// TestUnsubscribe checks that an unsubscribed handler is never called
// again: a key it watched is written after Unsubscribe returned, then a
// fence that a live subscription on both keys sees after that write.
func TestUnsubscribe(t *testing.T) {
	requireRedis(t)
	raw := rawClient(t, sharedAddr)
	s := newStore(t, sharedAddr, nil)
	k := newKeys(t, raw)
	a, fence := k.key("a"), k.key("fence")
	gone, live := newRecorder(k.prefix), newRecorder(k.prefix)
	id := subscribe(t, s, gone, a)
	subscribe(t, s, live, a, fence)

	do(t, raw, "set", a, "1")
	gone.expect(t, time.Second, a, item("1", ""))
	live.expect(t, time.Second, a, item("1", ""))

	unsubscribe(t, s, gone, id)
	do(t, raw, "set", a, "2")
	do(t, raw, "set", fence, "1")
	live.expect(t, time.Second, a, item("2", ""))
	live.expect(t, time.Second, fence, item("1", ""))
	gone.expectNone(t)

	for _, bad := range []string{id, "no-such-id", ""} {
		if err := s.Unsubscribe(context.Background(), bad); !errors.Is(err, component.ErrNotFound) {
			t.Errorf("Unsubscribe(%q) = %v, want ErrNotFound", bad, err)
		}
	}
}

// TestUnsubscribeBusyHandler checks Unsubscribe against handlers that are
// running: one that returns when its context ends, and one that ignores
// it, where Unsubscribe gives up at its own deadline.
func TestUnsubscribeBusyHandler(t *testing.T) {
	requireRedis(t)
	raw := rawClient(t, sharedAddr)
	s := newStore(t, sharedAddr, nil)

	tests := []struct {
		name        string
		honoursCtx  bool
		wantTimeout bool
	}{
		{name: "handler returns when its context ends", honoursCtx: true},
		{name: "handler ignores its context", wantTimeout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newKeys(t, raw)
			a, fence := k.key("a"), k.key("fence")
			entered := make(chan struct{}, 1)
			release := make(chan struct{})
			var calls, late atomic.Int64
			var stopped atomic.Bool
			h := func(ctx context.Context, u *configuration.Update) error {
				if stopped.Load() {
					late.Add(1)
				}
				calls.Add(1)
				entered <- struct{}{}
				if tt.honoursCtx {
					<-ctx.Done()
				} else {
					<-release
				}
				return nil
			}
			id, err := s.Subscribe(context.Background(), &configuration.SubscribeRequest{Keys: []string{a}}, h)
			if err != nil {
				t.Fatal(err)
			}
			live := newRecorder(k.prefix)
			subscribe(t, s, live, a, fence)

			do(t, raw, "set", a, "1")
			select {
			case <-entered:
			case <-time.After(wait):
				t.Fatal("handler not called")
			}
			do(t, raw, "set", a, "2") // queued behind the running call

			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			start := time.Now()
			err = s.Unsubscribe(ctx, id)
			cancel()
			stopped.Store(true)
			if tt.wantTimeout != errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Unsubscribe = %v, want timeout %v", err, tt.wantTimeout)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("Unsubscribe took %v", d)
			}
			close(release)

			do(t, raw, "set", a, "3")
			do(t, raw, "set", fence, "1")
			// The live subscription reads a when it gets to each event, so
			// it may see a later value than the event's; the fence is last.
			live.expectUntil(t, a, item("3", ""))
			live.untilFence(t, a, fence)
			if calls.Load() != 1 || late.Load() != 0 {
				t.Fatalf("handler called %d times (%d after Unsubscribe), want once", calls.Load(), late.Load())
			}
			if err := s.Unsubscribe(context.Background(), id); !errors.Is(err, component.ErrNotFound) {
				t.Fatalf("second Unsubscribe = %v, want ErrNotFound", err)
			}
		})
	}
}

// TestCloseStopsSubscriptions closes a store with live subscriptions, then
// writes their keys and a fence another store's subscription sees.
func TestCloseStopsSubscriptions(t *testing.T) {
	requireRedis(t)
	raw := rawClient(t, sharedAddr)
	k := newKeys(t, raw)
	a, b, fence := k.key("a"), k.key("b"), k.key("fence")
	s, err := initStore(sharedAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	recs := []*recorder{newRecorder(k.prefix), newRecorder(k.prefix), newRecorder(k.prefix)}
	ids := []string{subscribe(t, s, recs[0], a), subscribe(t, s, recs[1], a, b), subscribe(t, s, recs[2])}
	witness := newRecorder(k.prefix)
	subscribe(t, newStore(t, sharedAddr, nil), witness, a, b, fence)

	do(t, raw, "set", a, "1")
	for _, r := range recs {
		r.expect(t, time.Second, a, item("1", ""))
	}
	witness.expect(t, time.Second, a, item("1", ""))

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	for _, r := range recs {
		r.stopped.Store(true)
	}
	do(t, raw, "set", a, "2")
	do(t, raw, "set", b, "2")
	do(t, raw, "set", fence, "1")
	witness.expect(t, time.Second, a, item("2", ""))
	witness.expect(t, time.Second, b, item("2", ""))
	witness.expect(t, time.Second, fence, item("1", ""))
	for i, r := range recs {
		r.expectNone(t)
		if err := s.Unsubscribe(context.Background(), ids[i]); !errors.Is(err, component.ErrClosed) {
			t.Errorf("Unsubscribe after Close = %v, want ErrClosed", err)
		}
	}
}

// TestRedisGoesAway kills a private Redis under a subscription: the
// subscription backs off instead of spinning, comes back (notifications
// turned on again on the new server) when Redis does, and Unsubscribe and
// Close return promptly while Redis is down.
func TestRedisGoesAway(t *testing.T) {
	srv := backendtest.StartRedis(t)
	raw := rawClient(t, srv.Addr)
	s, err := initStore(srv.Addr, map[string]string{"dialTimeout": "1s"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	r := newRecorder("")
	id := subscribe(t, s, r, "color")
	other := subscribe(t, s, newRecorder(""), "size")
	do(t, raw, "set", "color", "red||1")
	r.expect(t, time.Second, "color", item("red", "1"))

	// Down: each failed read waits longer than the one before (100ms,
	// 200ms, 400ms), so four failures take at least 700ms; a loop that
	// spun would count thousands.
	start := time.Now()
	srv.Kill()
	const n = 4
	if err := backendtest.Eventually(wait, func() error {
		if f := redis.Failures(s, id); f < n {
			return fmt.Errorf("%d failed reads, want %d", f, n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if d, least := time.Since(start), 7*redis.RetryInitial; d < least {
		t.Fatalf("%d failed reads in %v, want at least %v between them", n, d, least)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := s.Subscribe(ctx, &configuration.SubscribeRequest{Keys: []string{"x"}}, r.handle); !errors.Is(err, component.ErrUnavailable) {
		t.Fatalf("Subscribe while Redis is down = %v, want ErrUnavailable", err)
	}
	if _, err := s.Get(ctx, &configuration.GetRequest{}); !errors.Is(err, component.ErrUnavailable) {
		t.Fatalf("Get while Redis is down = %v, want ErrUnavailable", err)
	}

	// Back: a fresh server with notifications off. The subscription dials
	// again, turns them on, and reports changes.
	srv.Start()
	v := 0
	if err := backendtest.Eventually(wait, func() error {
		v++
		want := fmt.Sprintf("v%d", v)
		if err := raw.Set(context.Background(), "color", want, 0).Err(); err != nil {
			return err
		}
		for {
			select {
			case u := <-r.updates:
				if it := u.Items["color"]; it != nil && it.Value == want {
					return nil
				}
			case <-time.After(200 * time.Millisecond):
				return fmt.Errorf("change %s not reported", want)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}

	// Down again: Unsubscribe and Close do not wait for Redis.
	srv.Kill()
	start = time.Now()
	unsubscribe(t, s, r, id)
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Unsubscribe and Close took %v with Redis down", d)
	}
	if err := s.Unsubscribe(ctx, other); !errors.Is(err, component.ErrClosed) {
		t.Fatalf("Unsubscribe after Close = %v, want ErrClosed", err)
	}
}

// TestHandlerFailures checks that a handler's error or panic does not end
// its subscription.
func TestHandlerFailures(t *testing.T) {
	requireRedis(t)
	raw := rawClient(t, sharedAddr)
	s := newStore(t, sharedAddr, nil)
	key := newKeys(t, raw).key("k")
	r := newRecorder(key)
	var calls atomic.Int64
	h := func(ctx context.Context, u *configuration.Update) error {
		switch calls.Add(1) {
		case 1:
			return errors.New("app said no")
		case 2:
			panic("handler bug")
		}
		return r.handle(ctx, u)
	}
	if _, err := s.Subscribe(context.Background(), &configuration.SubscribeRequest{Keys: []string{key}}, h); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1", "2", "3"} {
		do(t, raw, "set", key, v)
	}
	r.expectUntil(t, key, item("3", ""))
	if n := calls.Load(); n < 3 {
		t.Fatalf("handler called %d times, want 3", n)
	}
}

// TestSubscribeSeesChangesRightAway checks that a change made as soon as
// Subscribe returns is reported: Subscribe waits for Redis's confirmation.
func TestSubscribeSeesChangesRightAway(t *testing.T) {
	requireRedis(t)
	raw := rawClient(t, sharedAddr)
	s := newStore(t, sharedAddr, nil)
	for i := range 20 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			k := newKeys(t, raw)
			keys := []string{k.key("a"), k.key("b"), k.key("c")}
			r := newRecorder(k.prefix)
			subscribe(t, s, r, keys...)
			do(t, raw, "set", keys[2], "now")
			r.expect(t, time.Second, keys[2], item("now", ""))
		})
	}
}
