package wasmcomp_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
)

const hangstorePkg = "./host/internal/wasmcomp/testdata/guests/hangstore"

// started initialises c, made by new (which failed with err), as a
// component named name of type typ with metadata props, and closes it when
// t ends.
func started[C component.Lifecycle](t testing.TB, c C, err error, name, typ string, props map[string]string) C {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Init(context.Background(), component.Metadata{Name: name, Type: typ, Properties: props}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

// startHangPubSub starts hangstore's broker with annotations ann and
// metadata props.
func startHangPubSub(t *testing.T, e testEngine, ann, props map[string]string) *wasmcomp.PubSub {
	t.Helper()
	l := newLoader(t, e)
	p, err := l.NewPubSub(inspect(t, l, hangstorePkg), "ps", "pubsub.hang", ann)
	return started(t, p, err, "ps", "pubsub.hang", props)
}

// startStore starts a state store of type typ served by the guest pkg.
func startStore(t *testing.T, e testEngine, pkg, typ string, ann, props map[string]string) *wasmcomp.StateStore {
	t.Helper()
	l := newLoader(t, e)
	s, err := l.NewStateStore(inspect(t, l, pkg), "st", typ, ann)
	return started(t, s, err, "st", typ, props)
}

// TestDeadlineWhileWaiting: with a guest that hangs, more callers than
// instances each fail at their own deadline, the call timeout counted from
// their arrival: a caller queued for an instance does not wait for other
// callers' timeouts before its own starts. Batched gets, sets and publishes
// carry the earliest deadline of the requests they serve.
func TestDeadlineWhileWaiting(t *testing.T) { perEngine(t, testDeadlineWhileWaiting) }

func testDeadlineWhileWaiting(t *testing.T, e testEngine) {
	const (
		timeout = time.Second
		pool    = 8
		callers = 20
	)
	// slack is how late an answer may come: interrupting the guest
	// (wazero's meter, wasmtime's 10 ms epoch) and answering. The race
	// detector slows hung guests' interruption unpredictably on a busy
	// machine; there the bound only proves no caller waited out another
	// caller's timeout (the bug answered at 2×, 3×… the timeout).
	slack := 100 * time.Millisecond
	if raceEnabled {
		slack = timeout / 2
	}
	ann := map[string]string{wasmcomp.AnnotationPoolSize: strconv.Itoa(pool), wasmcomp.AnnotationCallTimeout: timeout.String()}
	get := func(ctx context.Context, s *wasmcomp.StateStore) error {
		_, err := s.Get(ctx, &state.GetRequest{Key: "loop"})
		return err
	}
	set := func(ctx context.Context, s *wasmcomp.StateStore) error {
		return s.Set(ctx, &state.SetRequest{Key: "loop", Value: []byte("v")})
	}
	// store starts a store whose op hangs and whose Get of key answers
	// "x" once the hung instances are replaced.
	store := func(pkg, typ string, props map[string]string, op func(context.Context, *wasmcomp.StateStore) error, key string) func(t *testing.T) (func(context.Context) error, func(context.Context) error) {
		return func(t *testing.T) (func(context.Context) error, func(context.Context) error) {
			s := startStore(t, e, pkg, typ, ann, props)
			return func(ctx context.Context) error { return op(ctx, s) }, func(ctx context.Context) error {
				if res, err := s.Get(ctx, &state.GetRequest{Key: key}); err != nil || string(res.Data) != "x" {
					return fmt.Errorf("get %s: %v %v", key, res, err)
				}
				return nil
			}
		}
	}
	publishes := func(t *testing.T) (func(context.Context) error, func(context.Context) error) {
		p := startHangPubSub(t, e, ann, nil)
		publish := func(topic string) func(context.Context) error {
			return func(ctx context.Context) error { return p.Publish(ctx, &pubsub.PublishRequest{Topic: topic}) }
		}
		return publish("loop"), publish("x")
	}
	cases := []struct {
		name string
		// start starts the component; op hangs, after works once the hung
		// instances are replaced.
		start func(t *testing.T) (op, after func(context.Context) error)
	}{
		// ABI v1.0: one guest call per request.
		{"gets", store(misbehavePkg, "state.misbehave", map[string]string{"target": "127.0.0.1:1"}, get, "echo:x")},
		// The current ABI minor: queued requests share bulk calls.
		{"batched-gets", store(hangstorePkg, "state.hang", nil, get, "x")},
		{"batched-sets", store(hangstorePkg, "state.hang", nil, set, "x")},
		{"batched-publishes", publishes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op, after := c.start(t)
			ctx := context.Background()
			start := make(chan struct{})
			took := make([]time.Duration, callers)
			errs := make([]error, callers)
			var wg sync.WaitGroup
			for k := range callers {
				wg.Go(func() {
					<-start
					arrived := time.Now()
					errs[k] = op(ctx)
					took[k] = time.Since(arrived)
				})
			}
			late := timerLateness(start, timeout)
			close(start)
			wg.Wait()
			for k := range callers {
				switch {
				case errs[k] == nil:
					t.Errorf("caller %d: answered after %s, want a deadline error", k, took[k])
				case !errors.Is(errs[k], context.DeadlineExceeded):
					t.Errorf("caller %d: %v, want a deadline error", k, errs[k])
				}
				if took[k] > timeout+slack+late() || took[k] < timeout-slack {
					t.Errorf("caller %d: answered after %s, want %s (± %s; plain timers were %s late): %v", k, took[k].Round(time.Millisecond), timeout, slack, late().Round(time.Millisecond), errs[k])
				}
			}
			t.Logf("answer times: %v (plain timers %s late)", roundAll(took), late().Round(time.Millisecond))
			// The hung instances were discarded; new ones serve.
			if err := after(ctx); err != nil {
				t.Fatalf("after the timeouts: %v", err)
			}
		})
	}
}

// timerLateness measures how late the process runs timers meanwhile: a few
// goroutines wait, from when start closes, for d on a plain timer, as the
// callers wait for their deadlines. The result, once the callers are done,
// is the latest of them past d: the scheduling delay of a loaded machine
// (hung guests spin on every core), which the callers suffer as much and
// which is no fault of theirs.
func timerLateness(start <-chan struct{}, d time.Duration) func() time.Duration {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	for range 4 {
		wg.Go(func() {
			<-start
			t0 := time.Now()
			<-time.After(d)
			mu.Lock()
			worst = max(worst, time.Since(t0)-d)
			mu.Unlock()
		})
	}
	return func() time.Duration {
		wg.Wait()
		return worst
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for k, d := range ds {
		out[k] = d.Round(10 * time.Millisecond)
	}
	return out
}
