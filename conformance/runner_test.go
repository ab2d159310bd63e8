package conformance_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/conformance"
)

// statuses maps each result's name to its status.
func statuses(r *conformance.Runner) map[string]conformance.Status {
	out := map[string]conformance.Status{}
	for _, res := range r.Results() {
		out[res.Name] = res.Status
	}
	return out
}

func TestRunnerOutcomes(t *testing.T) {
	var r conformance.Runner
	reached := map[string]bool{}
	ok := r.Run(context.Background(), "top", func(t conformance.T) {
		conformance.Run(t, "pass", func(t conformance.T) { t.Logf("fine") })
		conformance.Run(t, "error", func(t conformance.T) {
			t.Errorf("first %d", 1)
			t.Errorf("second")
			reached["error"] = true // Errorf goes on
		})
		conformance.Run(t, "fatal", func(t conformance.T) {
			t.Fatalf("stop here")
			reached["fatal"] = true
		})
		conformance.Run(t, "skip", func(t conformance.T) {
			t.Skipf("not today")
			reached["skip"] = true
		})
		conformance.Run(t, "panic", func(t conformance.T) { panic("boom") })
		reached["top"] = true
	})
	if ok {
		t.Error("Run reported success although subtests failed")
	}
	if !reached["error"] || reached["fatal"] || reached["skip"] || !reached["top"] {
		t.Errorf("reached %v: Errorf must go on, Fatalf and Skipf must end only their case", reached)
	}
	got := map[string]conformance.Result{}
	var names []string
	for _, res := range r.Results() {
		got[res.Name] = res
		names = append(names, res.Name)
	}
	if want := []string{"top", "top/pass", "top/error", "top/fatal", "top/skip", "top/panic"}; !slices.Equal(names, want) {
		t.Errorf("results in order %v, want %v (start order, parents first)", names, want)
	}
	check := func(name string, status conformance.Status, reason string) {
		t.Helper()
		res := got[name]
		if res.Status != status || !strings.HasPrefix(res.Reason, reason) {
			t.Errorf("%s = %s %q, want %s %q…", name, res.Status, res.Reason, status, reason)
		}
	}
	check("top/pass", conformance.StatusPass, "")
	check("top/error", conformance.StatusFail, "first 1")
	check("top/fatal", conformance.StatusFail, "stop here")
	check("top/skip", conformance.StatusSkip, "not today")
	check("top/panic", conformance.StatusFail, "panic: boom")
	check("top", conformance.StatusFail, "failed subtests: error, fatal, panic")
	if log := got["top/error"].Log; !slices.Equal(log, []string{"first 1", "second"}) {
		t.Errorf("log of top/error = %q", log)
	}
	if !strings.Contains(got["top/panic"].Reason, "runner_test.go") {
		t.Errorf("a panic's reason should carry its stack: %q", got["top/panic"].Reason)
	}
	if !r.Failed() {
		t.Error("Runner.Failed() = false")
	}
}

func TestRunnerSkipAndPassAreSuccess(t *testing.T) {
	var r conformance.Runner
	if !r.Run(context.Background(), "skipped", func(t conformance.T) { t.Skipf("why") }) {
		t.Error("a skipped case reported failure")
	}
	if !r.Run(context.Background(), "passed", func(t conformance.T) {}) {
		t.Error("a passed case reported failure")
	}
	if r.Failed() {
		t.Error("Runner.Failed() = true")
	}
}

func TestRunnerCleanupAndContext(t *testing.T) {
	var r conformance.Runner
	var order []string
	var ctx context.Context
	r.Run(context.Background(), "c", func(t conformance.T) {
		ctx = t.Context()
		t.Cleanup(func() {
			if ctx.Err() == nil {
				order = append(order, "context not done before cleanup")
			}
			order = append(order, "first registered")
		})
		t.Cleanup(func() { order = append(order, "second registered") })
		t.Cleanup(func() { t.Fatalf("a cleanup failing") }) // must not stop the others
		conformance.Run(t, "sub", func(t conformance.T) {
			t.Cleanup(func() { order = append(order, "subtest") })
		})
	})
	want := []string{"subtest", "second registered", "first registered"}
	if !slices.Equal(order, want) {
		t.Errorf("cleanups ran %v, want %v", order, want)
	}
	if res := statuses(&r); res["c"] != conformance.StatusFail {
		t.Errorf("a failing cleanup must fail its case: %v", res)
	}
}

func TestRunnerNames(t *testing.T) {
	var r conformance.Runner
	var names []string
	r.Run(context.Background(), "a b", func(t conformance.T) {
		for range 3 {
			conformance.Run(t, "dup", func(t conformance.T) { names = append(names, t.Name()) })
		}
	})
	if want := []string{"a_b/dup", "a_b/dup#01", "a_b/dup#02"}; !slices.Equal(names, want) {
		t.Errorf("names %v, want %v (as package testing names them)", names, want)
	}
}

func TestRunnerTimeoutAbandonsTheCase(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	r := conformance.Runner{Timeout: 50 * time.Millisecond}
	var mu sync.Mutex
	var seen []string
	r.OnResult = func(res conformance.Result) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, res.Name+"="+string(res.Status))
	}
	cancelled := make(chan error, 1)
	ok := r.Run(context.Background(), "slow", func(t conformance.T) {
		conformance.Run(t, "stuck", func(t conformance.T) {
			<-t.Context().Done()
			cancelled <- t.Context().Err()
			<-release
			t.Errorf("reported after abandonment: dropped")
		})
	})
	if ok {
		t.Fatal("a timed-out case reported success")
	}
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("the stuck case's context: %v, want cancelled", err)
	}
	res := statuses(&r)
	if res["slow"] != conformance.StatusFail || res["slow/stuck"] != conformance.StatusFail {
		t.Errorf("results %v, want both failed", res)
	}
	mu.Lock()
	if want := []string{"slow/stuck=fail", "slow=fail"}; !slices.Equal(seen, want) {
		t.Errorf("OnResult saw %v, want %v", seen, want)
	}
	mu.Unlock()
	// A later case runs normally.
	if !r.Run(context.Background(), "next", func(t conformance.T) {}) {
		t.Error("the case after a timeout failed")
	}
}

// TestRunWithTestingT: conformance.Run drives *testing.T subtests.
func TestRunWithTestingT(t *testing.T) {
	ran := false
	ok := conformance.Run(t, "sub", func(ct conformance.T) {
		if _, isT := ct.(*testing.T); !isT {
			t.Errorf("subtest T is %T, want *testing.T", ct)
		}
		ran = true
	})
	if !ok || !ran {
		t.Errorf("Run = %v, ran = %v", ok, ran)
	}
}

// plainT implements T but cannot run subtests.
type plainT struct {
	conformance.T
	errors []string
}

func (p *plainT) Helper() {}
func (p *plainT) Errorf(format string, args ...any) {
	p.errors = append(p.errors, format)
}

func TestRunWithoutSubtestSupport(t *testing.T) {
	p := &plainT{}
	if conformance.Run(p, "sub", func(conformance.T) { t.Error("ran") }) {
		t.Error("Run reported success")
	}
	if len(p.errors) != 1 {
		t.Errorf("errors %v, want one", p.errors)
	}
}

func TestFeatureResultString(t *testing.T) {
	got := conformance.FeatureResult{Feature: "TTL", Status: conformance.StatusSkip, Reason: "why"}.String()
	if got != "TTL not claimed: skip (why)" {
		t.Errorf("String() = %q", got)
	}
}
