package redisbatch

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// wait bounds how long a test waits for something that must happen.
const wait = 15 * time.Second

// fixture is a private server, a batcher on its own client, and a raw
// client for steering the server.
type fixture struct {
	srv *backendtest.Redis
	b   *Batcher
	raw *goredis.Client
}

func newFixture(t *testing.T, opts Options, maxRetries int) *fixture {
	t.Helper()
	srv := backendtest.StartRedis(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, MaxRetries: maxRetries, ReadTimeout: -1})
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	b := New(c, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		c.Close()
		raw.Close()
	})
	return &fixture{srv: srv, b: b, raw: raw}
}

// until waits, without sleeping, for cond to hold.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		runtime.Gosched()
	}
}

func (b *Batcher) state() (queued, running int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue), b.busy
}

// blockedClients returns how many connections Redis has blocked in BLPOP.
func (f *fixture) blockedClients(t *testing.T) int {
	info, err := f.raw.Info(context.Background(), "clients").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "blocked_clients:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatal("INFO clients has no blocked_clients")
	return 0
}

// hold occupies every batch slot with a BLPOP on list, which returns once
// something is pushed there, and returns a channel with its result.
func (f *fixture) hold(t *testing.T, list string) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		done <- f.b.Do(context.Background(), goredis.NewStringSliceCmd(context.Background(), "blpop", list, 0))
	}()
	until(t, "the BLPOP batch is in flight", func() bool { q, r := f.b.state(); return q == 0 && r == 1 })
	until(t, "Redis blocks the BLPOP", func() bool { return f.blockedClients(t) == 1 })
	return done
}

func (f *fixture) release(t *testing.T, list string) {
	t.Helper()
	if err := f.raw.LPush(context.Background(), list, "go").Err(); err != nil {
		t.Fatal(err)
	}
}

// echoCall is one caller: a unique payload echoed, and a SET then GET of
// its own key.
type echoCall struct {
	id   int
	echo *goredis.StringCmd
	set  *goredis.StatusCmd
	get  *goredis.StringCmd
	err  error
}

func newEchoCall(ctx context.Context, id int) *echoCall {
	key, val := "key"+strconv.Itoa(id), "value-"+strconv.Itoa(id)+strings.Repeat("x", id%50)
	return &echoCall{
		id:   id,
		echo: goredis.NewStringCmd(ctx, "echo", "echo-"+strconv.Itoa(id)),
		set:  goredis.NewStatusCmd(ctx, "set", key, val),
		get:  goredis.NewStringCmd(ctx, "get", key),
	}
}

func (c *echoCall) cmds() []goredis.Cmder { return []goredis.Cmder{c.echo, c.set, c.get} }

// check reports a reply that belongs to another call.
func (c *echoCall) check() error {
	if c.err != nil {
		return nil
	}
	want := "value-" + strconv.Itoa(c.id) + strings.Repeat("x", c.id%50)
	if got := c.echo.Val(); got != "echo-"+strconv.Itoa(c.id) {
		return fmt.Errorf("call %d: ECHO answered %q", c.id, got)
	}
	if got := c.get.Val(); got != want {
		return fmt.Errorf("call %d: GET answered %q, want %q", c.id, got, want)
	}
	return nil
}

// startCalls starts n calls from their own goroutines and waits until they
// are all queued (the batch slots being held).
func (f *fixture) startCalls(t *testing.T, n int) ([]*echoCall, *sync.WaitGroup) {
	t.Helper()
	calls := make([]*echoCall, n)
	var wg sync.WaitGroup
	for i := range calls {
		calls[i] = newEchoCall(context.Background(), i)
		wg.Go(func() { calls[i].err = f.b.Do(context.Background(), calls[i].cmds()...) })
	}
	until(t, "every call is queued", func() bool { q, _ := f.b.state(); return q == n })
	return calls, &wg
}

// TestOwnReplies queues many callers behind a held batch: they go out
// together in one batch and each gets exactly its own replies.
func TestOwnReplies(t *testing.T) {
	f := newFixture(t, Options{MaxInFlight: 1}, 0)
	held := f.hold(t, "gate")
	calls, wg := f.startCalls(t, 100)
	before := f.b.Stats()
	f.release(t, "gate")
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for _, c := range calls {
		if c.err != nil {
			t.Errorf("call %d: %v", c.id, c.err)
		}
		if err := c.check(); err != nil {
			t.Error(err)
		}
	}
	after := f.b.Stats()
	if got := after.Batches - before.Batches; got != 2 {
		t.Errorf("%d batches after the gate opened, want 2 (the gate's, then all 100 calls)", got)
	}
	if got := after.Calls - before.Calls; got != 101 {
		t.Errorf("%d calls sent, want 101", got)
	}
}

// TestBatchLimits checks that a queue longer than a batch goes out in
// several batches, and that an oversized call still goes out alone.
func TestBatchLimits(t *testing.T) {
	f := newFixture(t, Options{MaxInFlight: 1, MaxBatchCommands: 30, MaxBatchBytes: 1 << 20}, 0)
	held := f.hold(t, "gate")
	calls, wg := f.startCalls(t, 50) // 150 commands: 5 batches of 30
	big := goredis.NewStatusCmd(context.Background(), "set", "big", strings.Repeat("b", 2<<20))
	bigDone := make(chan error, 1)
	go func() { bigDone <- f.b.Do(context.Background(), big) }()
	until(t, "the big call is queued", func() bool { q, _ := f.b.state(); return q == 51 })
	before := f.b.Stats()
	f.release(t, "gate")
	<-held
	wg.Wait()
	if err := <-bigDone; err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if c.err != nil || c.check() != nil {
			t.Errorf("call %d: %v %v", c.id, c.err, c.check())
		}
	}
	if got := f.b.Stats().Batches - before.Batches; got != 7 {
		t.Errorf("%d batches, want 7 (the gate, 5 of 10 calls, the big one)", got)
	}
}

// TestLoneCallGoesAtOnce: with nothing else in flight a call is sent
// without waiting for company.
func TestLoneCallGoesAtOnce(t *testing.T) {
	f := newFixture(t, Options{}, 0)
	for i := range 20 {
		c := newEchoCall(context.Background(), i)
		if err := f.b.Do(context.Background(), c.cmds()...); err != nil {
			t.Fatal(err)
		}
		if err := c.check(); err != nil {
			t.Fatal(err)
		}
	}
	if st := f.b.Stats(); st.Batches != 20 || st.Calls != 20 {
		t.Fatalf("stats %+v, want 20 batches of one call", st)
	}
}

// TestCancelledCaller: a caller whose ctx ends returns at once, whether its
// call is queued (it is then not sent) or in a batch waiting for Redis.
func TestCancelledCaller(t *testing.T) {
	f := newFixture(t, Options{MaxInFlight: 1}, 0)

	// In flight: the BLPOP's own caller gives up while Redis blocks it.
	ctx, cancel := context.WithCancel(context.Background())
	inFlight := make(chan error, 1)
	go func() { inFlight <- f.b.Do(ctx, goredis.NewStringSliceCmd(ctx, "blpop", "gate", 0)) }()
	until(t, "Redis blocks the BLPOP", func() bool { return f.blockedClients(t) == 1 })
	cancel()
	if err := <-inFlight; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled in-flight caller got %v, want context.Canceled", err)
	}

	// Queued behind it: the caller leaves, and its SET is never sent.
	qctx, qcancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { queued <- f.b.Do(qctx, goredis.NewStatusCmd(qctx, "set", "abandoned", "1")) }()
	until(t, "the SET is queued", func() bool { q, _ := f.b.state(); return q == 1 })
	qcancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled queued caller got %v, want context.Canceled", err)
	}
	// Already ended: refused before queueing.
	if err := f.b.Do(qctx, goredis.NewStatusCmd(qctx, "set", "abandoned", "2")); !errors.Is(err, context.Canceled) {
		t.Fatalf("caller with an ended ctx got %v", err)
	}

	f.release(t, "gate")
	c := newEchoCall(context.Background(), 1)
	if err := f.b.Do(context.Background(), c.cmds()...); err != nil || c.check() != nil {
		t.Fatalf("after the gate: %v %v", err, c.check())
	}
	if n, err := f.raw.Exists(context.Background(), "abandoned").Result(); err != nil || n != 0 {
		t.Fatalf("the abandoned SET was applied (%d, %v)", n, err)
	}
	if st := f.b.Stats(); st.Skipped != 1 {
		t.Fatalf("stats %+v, want one skipped call", st)
	}
}

// killMidBatch sends a batch of calls followed by a BLPOP that Redis
// blocks, then kills every client connection while the batch waits. It
// returns the calls, the BLPOP's result and a function that waits for the
// calls.
func (f *fixture) killMidBatch(t *testing.T) ([]*echoCall, <-chan error, func()) {
	t.Helper()
	held := f.hold(t, "gate")
	calls, wg := f.startCalls(t, 40)
	blpop := make(chan error, 1)
	go func() {
		blpop <- f.b.Do(context.Background(), goredis.NewStringSliceCmd(context.Background(), "blpop", "tail", 0))
	}()
	until(t, "the tail BLPOP is queued", func() bool { q, _ := f.b.state(); return q == 41 })
	f.release(t, "gate")
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	// The batch [40 calls, BLPOP tail] is out; Redis has answered the
	// calls and blocks on the BLPOP.
	until(t, "Redis blocks the tail BLPOP", func() bool { q, _ := f.b.state(); return q == 0 && f.blockedClients(t) == 1 })
	if err := f.raw.Do(context.Background(), "client", "kill", "type", "normal", "skipme", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	return calls, blpop, wg.Wait
}

// TestConnectionKilledNoRetry: without retries the killed batch fails, its
// callers see either their own replies (read before the kill) or the
// connection error, and the next calls work on a new connection.
func TestConnectionKilledNoRetry(t *testing.T) {
	f := newFixture(t, Options{MaxInFlight: 1}, -1)
	calls, blpop, waitCalls := f.killMidBatch(t)
	err := <-blpop
	var rerr goredis.Error
	if err == nil || errors.As(err, &rerr) {
		t.Fatalf("BLPOP on a killed connection = %v, want a connection error", err)
	}
	waitCalls()
	for _, c := range calls {
		if err := c.check(); err != nil {
			t.Error(err)
		}
	}
	for i := range 20 {
		c := newEchoCall(context.Background(), 100+i)
		if err := f.b.Do(context.Background(), c.cmds()...); err != nil {
			// The pool may hand out one more connection the kill closed.
			continue
		}
		if err := c.check(); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("no call succeeded after the kill")
}

// TestConnectionKilledRetry: with retries go-redis sends the killed batch
// again on a new connection; every caller gets exactly its own replies.
func TestConnectionKilledRetry(t *testing.T) {
	f := newFixture(t, Options{MaxInFlight: 1}, 3)
	calls, blpop, waitCalls := f.killMidBatch(t)
	until(t, "the retried batch blocks again", func() bool { return f.blockedClients(t) == 1 })
	f.release(t, "tail")
	if err := <-blpop; err != nil {
		t.Fatalf("retried BLPOP: %v", err)
	}
	waitCalls()
	for _, c := range calls {
		if c.err != nil {
			t.Errorf("call %d: %v", c.id, c.err)
		}
		if err := c.check(); err != nil {
			t.Error(err)
		}
	}
}

// TestCloseDrains: Close refuses new calls at once, waits for the queued
// and in-flight ones, which succeed, and a Close whose ctx ends first says
// so.
func TestCloseDrains(t *testing.T) {
	f := newFixture(t, Options{MaxInFlight: 1}, 0)
	held := f.hold(t, "gate")
	calls, wg := f.startCalls(t, 20)

	expired, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.b.Close(expired); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with an ended ctx while busy = %v", err)
	}
	// Once Close returns, every accepted call has its replies.
	closed := make(chan error, 1)
	go func() {
		err := f.b.Close(context.Background())
		for _, c := range calls {
			if c.get.Val() == "" {
				err = errors.Join(err, fmt.Errorf("Close returned before call %d was answered", c.id))
			}
		}
		closed <- err
	}()
	if err := f.b.Do(context.Background(), goredis.NewStatusCmd(context.Background(), "ping")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close = %v, want ErrClosed", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with calls in flight", err)
	default:
	}
	f.release(t, "gate")
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, c := range calls {
		if c.err != nil || c.check() != nil {
			t.Errorf("call %d: %v %v", c.id, c.err, c.check())
		}
	}
}

// TestConcurrentLoad hammers a default batcher from many goroutines, half
// of them with contexts that can end (their batches run on workers), half
// with contexts that cannot (they run batches themselves).
func TestConcurrentLoad(t *testing.T) {
	f := newFixture(t, Options{}, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	cancellable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for g := range 64 {
		ctx := context.Background()
		if g%2 == 0 {
			ctx = cancellable
		}
		wg.Go(func() {
			for i := range 100 {
				c := newEchoCall(ctx, g*1000+i)
				if err := f.b.Do(ctx, c.cmds()...); err != nil {
					errs <- err
					return
				}
				if err := c.check(); err != nil {
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
	st := f.b.Stats()
	t.Logf("%d calls in %d batches (%.1f per batch)", st.Calls, st.Batches, float64(st.Calls)/float64(st.Batches))
}
