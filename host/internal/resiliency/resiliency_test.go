package resiliency

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	pubsubmemory "github.com/wapr-dev/wapr/builtin/pubsub/memory"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/resources"
)

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"5s", 5 * time.Second, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{"1m30s", 90 * time.Second, ""},
		{"1.5h", 90 * time.Minute, ""},
		{"2h45m", 165 * time.Minute, ""},
		{"250us", 250 * time.Microsecond, ""},
		{"1000", time.Second, ""}, // a whole number is milliseconds, as in daprd
		{"0", 0, ""},
		{" 15 ", 15 * time.Millisecond, ""},
		{"0s", 0, ""},
		{"", 0, "empty duration"},
		{"5x", 0, `invalid duration "5x"`},
		{"5 s", 0, `invalid duration "5 s"`},
		{"1.5", 0, `invalid duration "1.5"`}, // not whole, and no unit
		{"-1", 0, `negative duration "-1"`},
		{"-5s", 0, `negative duration "-5s"`},
		{"PT5S", 0, `invalid duration "PT5S"`}, // ISO 8601 is not daprd's either
		{"99999999999999999", 0, "too long"},
	} {
		got, err := ParseDuration(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want an error containing %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

// load writes each document to its own file in a fresh folder, reads it
// with package resources as the host does, and loads the Resiliency ones.
func load(t *testing.T, prev *Policies, docs ...string) (*Policies, []error) {
	t.Helper()
	dir := t.TempDir()
	for i, d := range docs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%d.yaml", i)), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, errs := resources.Load([]string{dir}, "myapp")
	if len(errs) > 0 {
		t.Fatalf("resources.Load: %v", errs)
	}
	return Load(set.Resiliencies, prev, nil)
}

func resiliencyDoc(name, spec string) string {
	return "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: " + name + "\nspec:\n" + spec
}

// The schema of daprd's resources: every field read, defaults applied.
func TestLoadSchema(t *testing.T) {
	p, errs := load(t, nil, resiliencyDoc("full", `
  policies:
    timeouts:
      general: 5s
      important: 60s
      millis: 750
    retries:
      pubsubRetry:
        policy: constant
        duration: 5s
        maxRetries: 10
      retryForever:
        policy: exponential
        maxInterval: 15s
        maxRetries: -1
      defaults: {}
      matched:
        policy: constant
        duration: 1s
        maxRetries: 2
        matching:
          httpStatusCodes: 429,500-504
          gRPCStatusCodes: 1-4,8-11,13,14
    circuitBreakers:
      simpleCB:
        maxRequests: 1
        timeout: 30s
        trip: consecutiveFailures >= 5
      pubsubCB:
        maxRequests: 1
        interval: 8s
        timeout: 45s
        trip: consecutiveFailures > 8
  targets:
    apps:
      appB:
        timeout: general
        retry: important-does-not-matter-here
    components:
      statestore1:
        outbound:
          timeout: general
          retry: retryForever
          circuitBreaker: simpleCB
      pubsub1:
        outbound:
          retry: pubsubRetry
          circuitBreaker: pubsubCB
        inbound:
          timeout: general
          retry: important-does-not-matter-here
`))
	// The apps target names a retry policy that does not exist.
	if p != nil || len(errs) != 2 {
		t.Fatalf("got %v, %d errors (%v); want the resource refused for its two unknown references", p, len(errs), errs)
	}
	for _, err := range errs {
		if !strings.Contains(err.Error(), `r0.yaml:1: resiliency "full": spec.targets.`) || !strings.Contains(err.Error(), `no retry policy named "important-does-not-matter-here" is defined`) {
			t.Errorf("error %q does not name the file, resource, field and problem", err)
		}
	}

	p, errs = load(t, nil, resiliencyDoc("full", `
  policies:
    timeouts:
      general: 5s
      millis: 750
    retries:
      pubsubRetry:
        policy: constant
        duration: 5s
        maxRetries: 10
      retryForever:
        policy: exponential
        maxInterval: 15s
        maxRetries: -1
      defaults: {}
      matched:
        policy: Constant
        duration: 1s
        maxRetries: 2
        matching:
          httpStatusCodes: 429,500-504
          gRPCStatusCodes: 1-4,8-11,13,14
    circuitBreakers:
      simpleCB:
        maxRequests: 1
        timeout: 30s
        trip: consecutiveFailures >= 5
      bare: {}
  targets:
    apps:
      appB:
        timeout: general
        retry: matched
        circuitBreakerCacheSize: 7
    components:
      statestore1:
        outbound:
          timeout: millis
          retry: retryForever
          circuitBreaker: simpleCB
        inbound:
          retry: pubsubRetry
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := p.timeouts["millis"]; got != 750*time.Millisecond {
		t.Errorf("timeout millis = %v", got)
	}
	if r := p.retries["defaults"]; r.Backoff != BackoffConstant || r.Duration != 5*time.Second || r.MaxRetries != -1 || r.MaxInterval != time.Minute {
		t.Errorf("an empty retry policy = %+v; want daprd's defaults (constant, 5s, forever)", r)
	}
	if r := p.retries["retryForever"]; r.Backoff != BackoffExponential || r.MaxInterval != 15*time.Second || r.MaxRetries != -1 {
		t.Errorf("retryForever = %+v", r)
	}
	r := p.retries["matched"]
	if fmt.Sprint(r.HTTPStatusCodes) != "[{429 429} {500 504}]" || fmt.Sprint(r.GRPCStatusCodes) != "[{1 4} {8 11} {13 13} {14 14}]" {
		t.Errorf("matching = %v %v", r.HTTPStatusCodes, r.GRPCStatusCodes)
	}
	if b := p.breakers["bare"]; b.MaxRequests != 0 || b.Timeout != DefaultBreakerTimeout || b.Interval != 0 || b.trip != nil {
		t.Errorf("an empty breaker = %+v; want gobreaker's defaults", b)
	}
	if got := p.apps["appB"]; got.BreakerCacheSize != 7 || got.Retry != "matched" {
		t.Errorf("apps.appB = %+v", got)
	}
	out := p.Component("statestore1", KindStateStore, Outbound)
	if out == nil || out.timeout != 750*time.Millisecond || out.retry.Name != "retryForever" || out.breaker == nil {
		t.Errorf("outbound policy of statestore1 = %+v", out)
	}
	in := p.Component("statestore1", KindStateStore, Inbound)
	if in == nil || in.timeout != 0 || in.retry.Name != "pubsubRetry" || in.breaker != nil {
		t.Errorf("inbound policy of statestore1 = %+v", in)
	}
	if p.Component("other", KindStateStore, Outbound) != nil || p.App("appC", "m") != nil {
		t.Error("a target no resource names has a policy")
	}
}

// A broken resource is refused whole, with a message naming file, resource,
// field and problem; the others load.
func TestLoadRefusesBadResources(t *testing.T) {
	good := resiliencyDoc("good", `
  policies:
    retries:
      three: {policy: constant, duration: 10ms, maxRetries: 3}
  targets:
    components:
      statestore: {outbound: {retry: three}}
`)
	for _, c := range []struct{ name, spec, want string }{
		{"duration", "  policies:\n    timeouts:\n      t: 5x\n", `spec.policies.timeouts.t: invalid duration "5x"`},
		{"retry duration", "  policies:\n    retries:\n      r: {duration: soon}\n", `spec.policies.retries.r.duration: invalid duration "soon"`},
		{"policy", "  policies:\n    retries:\n      r: {policy: linear}\n", `spec.policies.retries.r.policy: "linear" is neither constant nor exponential`},
		{"maxRetries", "  policies:\n    retries:\n      r: {maxRetries: -2}\n", `spec.policies.retries.r.maxRetries: must be -1 (retry forever) or more, not -2`},
		{"maxRetries type", "  policies:\n    retries:\n      r: {maxRetries: many}\n", `spec.policies.retries.r.maxRetries: must be an integer, not "many"`},
		{"matching", "  policies:\n    retries:\n      r: {matching: {httpStatusCodes: 500-404}}\n", `spec.policies.retries.r.matching.httpStatusCodes: "500-404": the range ends before it starts`},
		{"matching range", "  policies:\n    retries:\n      r: {matching: {gRPCStatusCodes: \"17\"}}\n", `codes must be between 0 and 16`},
		{"trip syntax", "  policies:\n    circuitBreakers:\n      cb: {trip: consecutiveFailures >=}\n", `spec.policies.circuitBreakers.cb.trip: invalid expression "consecutiveFailures >="`},
		{"trip variable", "  policies:\n    circuitBreakers:\n      cb: {trip: consecutiveFailure > 3}\n", `undeclared reference to 'consecutiveFailure'`},
		{"trip type", "  policies:\n    circuitBreakers:\n      cb: {trip: consecutiveFailures + 1}\n", `is int, not a bool`},
		{"interval", "  policies:\n    circuitBreakers:\n      cb: {interval: -3s}\n", `spec.policies.circuitBreakers.cb.interval: negative duration "-3s"`},
		{"unknown field", "  policies:\n    retries:\n      r: {maxRetry: 3}\n", `spec.policies.retries.r.maxRetry: unknown field`},
		{"unknown policy", "  targets:\n    components:\n      statestore: {outbound: {circuitBreaker: nope}}\n", `spec.targets.components.statestore.outbound.circuitBreaker: no circuit breaker policy named "nope" is defined`},
		{"not a mapping", "  policies:\n    timeouts: [5s]\n", `spec.policies.timeouts: must be a mapping, not a list`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, errs := load(t, nil, good, resiliencyDoc("bad", c.spec))
			if len(errs) != 1 {
				t.Fatalf("errors %v; want one", errs)
			}
			msg := errs[0].Error()
			if !strings.Contains(msg, `r1.yaml:1: resiliency "bad": `) || !strings.Contains(msg, c.want) {
				t.Errorf("error %q; want it to name r1.yaml, the resource and %q", msg, c.want)
			}
			if p == nil || strings.Join(p.Names, ",") != "good" {
				t.Fatalf("in force: %v; want only the good resource", p)
			}
			if pol := p.Component("statestore", KindStateStore, Outbound); pol == nil || pol.retry.MaxRetries != 3 {
				t.Errorf("the good resource's policy is not in force: %+v", pol)
			}
		})
	}
}

// Resources merge by name; a target may use another resource's policy;
// Default…Policy names apply where no target is named, the most specific
// first.
func TestLoadMergeAndDefaults(t *testing.T) {
	p, errs := load(t, nil,
		resiliencyDoc("a", `
  policies:
    retries:
      shared: {maxRetries: 1}
      DefaultRetryPolicy: {maxRetries: 7}
      DefaultComponentRetryPolicy: {maxRetries: 8}
      DefaultStatestoreComponentOutboundRetryPolicy: {maxRetries: 9}
    timeouts:
      DefaultAppTimeoutPolicy: 3s
      DefaultTimeoutPolicy: 4s
`),
		resiliencyDoc("b", `
  policies:
    retries:
      shared: {maxRetries: 2}
  targets:
    apps:
      checkout: {retry: shared}
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := p.App("checkout", "m"); got.retry.MaxRetries != 2 || got.timeout != 0 {
		t.Errorf("checkout: %+v; want the later resource's shared retry and no default timeout", got)
	}
	if got := p.App("other", "m"); got.retry.MaxRetries != 7 || got.timeout != 3*time.Second {
		t.Errorf("other app: retry %+v timeout %v; want DefaultRetryPolicy and DefaultAppTimeoutPolicy", got.retry, got.timeout)
	}
	for _, c := range []struct {
		kind Kind
		dir  Direction
		want int64
	}{
		{KindStateStore, Outbound, 9},
		{KindStateStore, Inbound, 8},
		{KindPubSub, Outbound, 8},
	} {
		got := p.Component("x", c.kind, c.dir)
		if got.retry.MaxRetries != c.want || got.timeout != 4*time.Second {
			t.Errorf("%s %s: retries %d timeout %v; want %d and 4s", c.kind, c.dir, got.retry.MaxRetries, got.timeout, c.want)
		}
	}
}

func policyFrom(t *testing.T, spec string) *Policy {
	t.Helper()
	p, errs := load(t, nil, resiliencyDoc("r", spec))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return p.Component("c", KindStateStore, Outbound)
}

var errBackend = errors.New("backend down")

func TestRunRetries(t *testing.T) {
	pol := policyFrom(t, `
  policies:
    retries:
      r: {policy: constant, duration: 5ms, maxRetries: 3}
  targets:
    components:
      c: {outbound: {retry: r}}
`)
	for _, c := range []struct {
		name     string
		failures int
		err      error
		attempts int
		wantErr  bool
	}{
		{"recovers", 2, errBackend, 3, false},
		{"gives up after maxRetries", 100, errBackend, 4, true},
		{"not found is an answer", 100, fmt.Errorf("key: %w", component.ErrNotFound), 1, true},
		{"etag conflict is an answer", 100, &state.ETagError{Kind: state.ETagMismatch}, 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			_, err := Run(context.Background(), pol, func(context.Context) (int, error) {
				n++
				if n <= c.failures {
					return 0, c.err
				}
				return n, nil
			})
			if n != c.attempts || (err != nil) != c.wantErr {
				t.Errorf("%d attempts, error %v; want %d attempts, error %v", n, err, c.attempts, c.wantErr)
			}
		})
	}
}

func TestRunRetryForeverStopsWithTheCaller(t *testing.T) {
	pol := policyFrom(t, `
  policies:
    retries:
      r: {policy: constant, duration: 1ms, maxRetries: -1}
  targets:
    components:
      c: {outbound: {retry: r}}
`)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := Run(ctx, pol, func(context.Context) (int, error) {
		n++
		if n == 50 {
			cancel()
		}
		return 0, errBackend
	})
	if n != 50 || !errors.Is(err, errBackend) {
		t.Errorf("%d attempts, %v; want 50 and the last failure", n, err)
	}
}

// Exponential waits start near 500ms, grow by 1.5 with ±50% jitter, and stop
// growing at maxInterval; constant waits are duration.
func TestBackoff(t *testing.T) {
	b := (&Retry{Backoff: BackoffExponential, MaxInterval: 2 * time.Second, MaxRetries: 6}).backOff()
	current := float64(ExponentialInitialInterval)
	for i := range 6 {
		d := b.NextBackOff()
		lo, hi := time.Duration(current*0.5), time.Duration(current*1.5)
		if d < lo || d > hi {
			t.Errorf("wait %d = %v; want within [%v, %v]", i, d, lo, hi)
		}
		current = min(current*1.5, float64(2*time.Second))
	}
	if d := b.NextBackOff(); d != backoff.Stop {
		t.Errorf("after maxRetries: %v; want Stop", d)
	}
	c := (&Retry{Backoff: BackoffConstant, Duration: 42 * time.Millisecond, MaxRetries: 2}).backOff()
	if a, b, s := c.NextBackOff(), c.NextBackOff(), c.NextBackOff(); a != 42*time.Millisecond || b != a || s != backoff.Stop {
		t.Errorf("constant waits %v %v %v", a, b, s)
	}
}

func TestRunMatching(t *testing.T) {
	pol := policyFrom(t, `
  policies:
    retries:
      r: {duration: 1ms, maxRetries: 2, matching: {httpStatusCodes: "502-504"}}
  targets:
    components:
      c: {outbound: {retry: r}}
`)
	for status, want := range map[int]int{500: 1, 503: 3, 404: 1} {
		n := 0
		_, err := Run(context.Background(), pol, func(context.Context) (int, error) {
			n++
			return 0, &StatusError{Status: status}
		})
		if n != want || err == nil {
			t.Errorf("status %d: %d attempts (%v); want %d", status, n, err, want)
		}
	}
	// A failure without a status is always retried.
	n := 0
	Run(context.Background(), pol, func(context.Context) (int, error) { n++; return 0, errBackend })
	if n != 3 {
		t.Errorf("an error without status: %d attempts; want 3", n)
	}
}

func TestRunTimeout(t *testing.T) {
	pol := policyFrom(t, `
  policies:
    timeouts:
      short: 50ms
    retries:
      twice: {duration: 1ms, maxRetries: 1}
  targets:
    components:
      c: {outbound: {timeout: short, retry: twice}}
`)
	n := 0
	start := time.Now()
	_, err := Run(context.Background(), pol, func(ctx context.Context) (int, error) {
		n++
		<-ctx.Done() // a backend that never answers
		return 0, ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) || n != 2 {
		t.Errorf("%d attempts, %v; want each attempt cut at its deadline and retried once", n, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

// A breaker opens when its trip expression holds, fails at once while open
// (no retries either), half-opens after its timeout and closes on success.
func TestRunCircuitBreaker(t *testing.T) {
	p, errs := load(t, nil, resiliencyDoc("r", `
  policies:
    retries:
      r: {duration: 1ms, maxRetries: 5}
    circuitBreakers:
      cb: {maxRequests: 1, timeout: 300ms, trip: consecutiveFailures >= 3}
  targets:
    components:
      c: {outbound: {retry: r, circuitBreaker: cb}}
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	pol := p.Component("c", KindStateStore, Outbound)
	var calls atomic.Int32
	var healthy atomic.Bool
	var opened time.Time // just before the breaker opens
	op := func(context.Context) (int, error) {
		if calls.Add(1) == 3 {
			opened = time.Now()
		}
		if healthy.Load() {
			return 1, nil
		}
		return 0, errBackend
	}
	_, err := Run(context.Background(), pol, op)
	if !errors.Is(err, ErrBreakerOpen) || calls.Load() != 3 {
		t.Fatalf("%d calls, %v; want 3 calls, then the open breaker stopping the retries", calls.Load(), err)
	}
	// The same breaker serves every call to the component, and the
	// policy looked up again.
	_, err = Run(context.Background(), p.Component("c", KindStateStore, Outbound), op)
	if !errors.Is(err, ErrBreakerOpen) || calls.Load() != 3 {
		t.Fatalf("while open: %d calls, %v; want a fast failure", calls.Load(), err)
	}
	healthy.Store(true)
	for {
		_, err = Run(context.Background(), pol, op)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrBreakerOpen) || time.Since(opened) > 5*time.Second {
			t.Fatalf("waiting for half-open: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(opened); d < 300*time.Millisecond {
		t.Errorf("half-open after %v; want at least the 300ms timeout", d)
	}
	if calls.Load() != 4 {
		t.Errorf("%d calls; want the one half-open probe", calls.Load())
	}
	if _, err := Run(context.Background(), pol, op); err != nil || calls.Load() != 5 {
		t.Errorf("after closing: %v, %d calls", err, calls.Load())
	}

	// A reload that leaves the breaker unchanged keeps its state; one that
	// changes it starts afresh.
	healthy.Store(false)
	Run(context.Background(), pol, op)
	if _, err := Run(context.Background(), pol, op); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("breaker did not open again: %v", err)
	}
	same, _ := load(t, p, resiliencyDoc("r", `
  policies:
    circuitBreakers:
      cb: {maxRequests: 1, timeout: 300ms, trip: consecutiveFailures >= 3}
  targets:
    components:
      c: {outbound: {circuitBreaker: cb}}
`))
	if _, err := Run(context.Background(), same.Component("c", KindStateStore, Outbound), op); !errors.Is(err, ErrBreakerOpen) {
		t.Errorf("after a reload with the same breaker: %v; want it still open", err)
	}
	changed, _ := load(t, same, resiliencyDoc("r", `
  policies:
    circuitBreakers:
      cb: {maxRequests: 1, timeout: 300ms, trip: consecutiveFailures >= 4}
  targets:
    components:
      c: {outbound: {circuitBreaker: cb}}
`))
	before := calls.Load()
	if _, err := Run(context.Background(), changed.Component("c", KindStateStore, Outbound), op); !errors.Is(err, errBackend) || calls.Load() != before+1 {
		t.Errorf("after a reload with a changed breaker: %v; want a fresh, closed breaker", err)
	}
}

// An app's breakers are per method, and bounded.
func TestAppBreakers(t *testing.T) {
	p, errs := load(t, nil, resiliencyDoc("r", `
  policies:
    circuitBreakers:
      cb: {trip: consecutiveFailures >= 1}
  targets:
    apps:
      checkout: {circuitBreaker: cb, circuitBreakerCacheSize: 2}
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	fail := func(context.Context) (int, error) { return 0, errBackend }
	Run(context.Background(), p.App("checkout", "a"), fail)
	if _, err := Run(context.Background(), p.App("checkout", "a"), fail); !errors.Is(err, ErrBreakerOpen) {
		t.Errorf("method a: %v; want its breaker open", err)
	}
	if _, err := Run(context.Background(), p.App("checkout", "b"), fail); !errors.Is(err, errBackend) {
		t.Errorf("method b: %v; want its own, closed breaker", err)
	}
	p.App("checkout", "c")
	if n := len(p.appBreakers["checkout"]); n != 2 {
		t.Errorf("%d breakers kept; want at most circuitBreakerCacheSize", n)
	}
}

// A subscription that keeps running across a reload delivers under the
// inbound policy in force at each delivery, and publishing under the
// outbound policy of the snapshot it was taken from.
func TestDecorateInboundFollowsReload(t *testing.T) {
	mem := pubsubmemory.New()
	if err := mem.Init(t.Context(), component.Metadata{Name: "events", Type: "pubsub.in-memory", Properties: map[string]string{
		"redeliverInitialInterval": "1h", "redeliverMaxInterval": "1h", // only a policy retries
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close(context.Background()) })
	var cur Current
	snap := &api.Snapshot{PubSubs: map[string]*api.PubSub{"events": {PubSub: mem}}}
	cur.Decorate(snap, "events")

	var mu sync.Mutex
	attempts := map[string]int{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := snap.PubSubs["events"].PubSub.Subscribe(ctx, pubsub.SubscribeRequest{Topic: "t"}, func(_ context.Context, msg *pubsub.Message) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[string(msg.Data)]++
		return errBackend
	})
	if err != nil {
		t.Fatal(err)
	}
	p, errs := load(t, nil, resiliencyDoc("r", `
  policies:
    retries:
      r: {duration: 1ms, maxRetries: 2}
  targets:
    components:
      events: {inbound: {retry: r}}
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	cur.Store(p) // a reload, after the subscription started
	if err := snap.PubSubs["events"].PubSub.Publish(t.Context(), &pubsub.PublishRequest{Topic: "t", Data: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := attempts["m"]
		mu.Unlock()
		if n == 3 {
			break
		}
		if n > 3 || time.Now().After(deadline) {
			t.Fatalf("%d deliveries; want 1 + maxRetries 2 of the policy loaded after the subscription started", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Looking up the policy of a component no resource targets, as each
// delivery does, allocates nothing.
func TestLookupAllocations(t *testing.T) {
	p, errs := load(t, nil, resiliencyDoc("r", `
  policies:
    retries:
      r: {maxRetries: 1}
  targets:
    components:
      other: {inbound: {retry: r}}
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var cur Current
	cur.Store(p)
	if n := testing.AllocsPerRun(100, func() {
		if cur.Load().Component("events", KindPubSub, Inbound) != nil {
			t.Fatal("a policy for an untargeted component")
		}
	}); n != 0 {
		t.Errorf("%v allocations per lookup; want 0", n)
	}
}

// A broken edit of a resource in force leaves its previous version
// applying, and says so; a new broken resource applies nothing.
func TestLoadKeepsPreviousVersion(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yaml")
	loadFile := func(prev *Policies, spec string) (*Policies, []error) {
		t.Helper()
		if err := os.WriteFile(file, []byte(resiliencyDoc("r", spec)), 0o644); err != nil {
			t.Fatal(err)
		}
		set, errs := resources.Load([]string{dir}, "myapp")
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return Load(set.Resiliencies, prev, nil)
	}
	good := "  policies:\n    retries:\n      r: {maxRetries: 2}\n  targets:\n    components:\n      c: {outbound: {retry: r}}\n"
	bad := "  policies:\n    retries:\n      r: {maxRetries: two}\n  targets:\n    components:\n      c: {outbound: {retry: r}}\n"
	if p, errs := loadFile(nil, bad); p != nil || len(errs) != 1 || strings.Contains(errs[0].Error(), "previous version") {
		t.Fatalf("a broken resource at start: %v, %v", p, errs)
	}
	p, errs := loadFile(nil, good)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	p, errs = loadFile(p, bad)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `spec.policies.retries.r.maxRetries: must be an integer, not "two" (the previous version of the resource keeps applying)`) {
		t.Errorf("errors %v", errs)
	}
	if pol := p.Component("c", KindStateStore, Outbound); pol == nil || pol.retry.MaxRetries != 2 {
		t.Errorf("after a broken edit: %+v; want the previous version's policy", pol)
	}
}
