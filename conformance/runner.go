package conformance

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Runner runs cases outside `go test` and records a Result for each, for a
// program such as `wapr conformance` to report.
//
// Each case runs on a goroutine of its own; Fatalf and Skipf end it with
// runtime.Goexit, as in package testing. A panic in a case is recovered and
// recorded as a failure with its stack, so one broken component cannot take
// the program down (a panic on a goroutine the component starts itself
// still does). Cases run one at a time: Run waits for the case and its
// subtests.
//
// The zero Runner is ready to use. A Runner is safe for concurrent use, but
// its cases are meant to be run one after the other.
type Runner struct {
	// Timeout, if positive, bounds each case started by Run (subtests
	// included). A case still running then is recorded as failed, its
	// Context is cancelled and it is abandoned: its goroutines are left
	// to finish on their own, its Cleanup functions are not run and
	// nothing it reports afterwards is recorded.
	Timeout time.Duration
	// OnResult, if set, is called with each Result as its case ends
	// (subtests before their parent), for progress output. Calls are
	// serialised.
	OnResult func(Result)

	mu    sync.Mutex
	cases []*runnerT // every case started, in start order
	cbMu  sync.Mutex // serialises OnResult
}

// Run runs f as a top-level case named name and waits for it (or for
// Timeout). It reports whether the case passed or was skipped. The case's
// Context is derived from ctx.
func (r *Runner) Run(ctx context.Context, name string, f func(t T)) bool {
	c := r.start(ctx, nil, name)
	if r.Timeout <= 0 {
		return r.exec(c, f, nil)
	}
	timer := time.NewTimer(r.Timeout)
	defer timer.Stop()
	return r.exec(c, f, timer.C)
}

// Results returns a copy of the results recorded so far, in the order the
// cases started (a parent before its subtests). A case still running is not
// included.
func (r *Runner) Results() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Result, 0, len(r.cases))
	for _, c := range r.cases {
		if c.recorded {
			res := c.result
			res.Log = append([]string(nil), res.Log...)
			out = append(out, res)
		}
	}
	return out
}

// Failed reports whether any case recorded so far failed.
func (r *Runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cases {
		if c.recorded && c.result.Status == StatusFail {
			return true
		}
	}
	return false
}

// runnerT is one case of a Runner; it implements Parent. Fields below mu
// are guarded by the Runner's mu.
type runnerT struct {
	r      *Runner
	parent *runnerT
	root   *runnerT
	name   string
	ctx    context.Context
	cancel context.CancelFunc
	start  time.Time

	failed, skipped bool
	done            bool // ended: nothing more is recorded
	abandoned       bool // on a root: it timed out
	recorded        bool // result is set
	reason          string
	logs            []string
	cleanups        []func()
	failedChildren  []string
	childNames      map[string]int
	result          Result
}

var _ Parent = (*runnerT)(nil)

// start registers a new case under parent (nil for a top-level one). It
// returns nil when parent's tree was abandoned.
func (r *Runner) start(ctx context.Context, parent *runnerT, name string) *runnerT {
	r.mu.Lock()
	defer r.mu.Unlock()
	name = strings.ReplaceAll(name, " ", "_")
	full := name
	if parent != nil {
		if parent.root.abandoned {
			return nil
		}
		if parent.childNames == nil {
			parent.childNames = map[string]int{}
		}
		n := parent.childNames[name]
		parent.childNames[name] = n + 1
		if n > 0 {
			name += "#" + fmt.Sprintf("%02d", n)
		}
		full = parent.name + "/" + name
	}
	c := &runnerT{r: r, parent: parent, name: full, start: time.Now()}
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.root = c
	if parent != nil {
		c.root = parent.root
	}
	r.cases = append(r.cases, c)
	return c
}

// exec runs f on c on a goroutine of its own and waits for it, or for
// timeout; then it runs c's cleanups and records its result.
func (r *Runner) exec(c *runnerT, f func(T), timeout <-chan time.Time) bool {
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		defer func() {
			if p := recover(); p != nil {
				c.fail(fmt.Sprintf("panic: %v\n%s", p, debug.Stack()))
			}
		}()
		f(c)
	}()
	select {
	case <-ran:
	case <-timeout:
		r.abandon(c)
		return false
	}
	c.cancel()
	c.runCleanups()
	return r.finish(c)
}

// runCleanups runs c's Cleanup functions, last registered first, each on a
// goroutine of its own so that Fatalf or a panic in one ends only that one.
func (c *runnerT) runCleanups() {
	for {
		c.r.mu.Lock()
		n := len(c.cleanups)
		if n == 0 || c.root.abandoned {
			c.r.mu.Unlock()
			return
		}
		f := c.cleanups[n-1]
		c.cleanups = c.cleanups[:n-1]
		c.r.mu.Unlock()

		ran := make(chan struct{})
		go func() {
			defer close(ran)
			defer func() {
				if p := recover(); p != nil {
					c.fail(fmt.Sprintf("panic in Cleanup: %v\n%s", p, debug.Stack()))
				}
			}()
			f()
		}()
		<-ran
	}
}

// finish records c's result and reports whether it passed or was skipped.
func (r *Runner) finish(c *runnerT) bool {
	r.mu.Lock()
	if c.done {
		// Abandoned meanwhile; abandon recorded it.
		r.mu.Unlock()
		return false
	}
	c.done = true
	res := c.makeResult(time.Since(c.start))
	if c.failed && c.parent != nil && !c.parent.done {
		c.parent.failed = true
		c.parent.failedChildren = append(c.parent.failedChildren, c.name[len(c.parent.name)+1:])
	}
	ok := !c.failed
	r.mu.Unlock()
	r.report(res)
	return ok
}

// makeResult sets and returns c's result. The caller holds r.mu.
func (c *runnerT) makeResult(d time.Duration) Result {
	res := Result{Name: c.name, Duration: d, Log: c.logs}
	switch {
	case c.failed:
		res.Status = StatusFail
		res.Reason = c.reason
		if res.Reason == "" && len(c.failedChildren) > 0 {
			res.Reason = "failed subtests: " + strings.Join(c.failedChildren, ", ")
		}
	case c.skipped:
		res.Status, res.Reason = StatusSkip, c.reason
	default:
		res.Status = StatusPass
	}
	c.result, c.recorded = res, true
	return res
}

// abandon records root, which timed out, and every case of its tree still
// running as failed, and cancels them.
func (r *Runner) abandon(root *runnerT) {
	r.mu.Lock()
	root.abandoned = true
	var results []Result
	// Cases start after their parents, so walking backwards ends children
	// before parents, as finish does.
	for i := len(r.cases) - 1; i >= 0; i-- {
		c := r.cases[i]
		if c.root != root || c.done {
			continue
		}
		c.done = true
		c.failed = true
		msg := fmt.Sprintf("timed out: still running after the Runner's Timeout of %s", r.Timeout)
		if c != root {
			msg = "still running when " + root.name + " timed out"
		}
		c.logs = append(c.logs, msg)
		if c.reason == "" {
			c.reason = msg
		}
		c.cancel()
		results = append(results, c.makeResult(time.Since(c.start)))
	}
	r.mu.Unlock()
	for _, res := range results {
		r.report(res)
	}
}

func (r *Runner) report(res Result) {
	if r.OnResult == nil {
		return
	}
	r.cbMu.Lock()
	defer r.cbMu.Unlock()
	res.Log = append([]string(nil), res.Log...)
	r.OnResult(res)
}

// log appends msg to c's log; with failed or skipped it also marks c.
// Messages that arrive after c ended are dropped.
func (c *runnerT) log(msg string, failed, skipped bool) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.done {
		return
	}
	c.logs = append(c.logs, msg)
	if failed {
		if !c.failed {
			c.reason = msg
		}
		c.failed = true
	}
	if skipped && !c.failed {
		c.skipped = true
		if c.reason == "" {
			c.reason = msg
		}
	}
}

func (c *runnerT) fail(msg string) { c.log(msg, true, false) }

// Name implements T.
func (c *runnerT) Name() string { return c.name }

// Context implements T.
func (c *runnerT) Context() context.Context { return c.ctx }

// Cleanup implements T.
func (c *runnerT) Cleanup(f func()) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.cleanups = append(c.cleanups, f)
}

// Helper implements T; a Runner does not report call sites.
func (c *runnerT) Helper() {}

// Logf implements T.
func (c *runnerT) Logf(format string, args ...any) { c.log(fmt.Sprintf(format, args...), false, false) }

// Errorf implements T.
func (c *runnerT) Errorf(format string, args ...any) { c.fail(fmt.Sprintf(format, args...)) }

// Fatalf implements T.
func (c *runnerT) Fatalf(format string, args ...any) {
	c.fail(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// Skipf implements T.
func (c *runnerT) Skipf(format string, args ...any) {
	c.log(fmt.Sprintf(format, args...), false, true)
	runtime.Goexit()
}

// Failed implements T.
func (c *runnerT) Failed() bool {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	return c.failed
}

// Skipped implements T.
func (c *runnerT) Skipped() bool {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	return c.skipped
}

// Run implements Parent.
func (c *runnerT) Run(name string, f func(T)) bool {
	child := c.r.start(c.ctx, c, name)
	if child == nil {
		return false
	}
	return c.r.exec(child, f, nil)
}

// String names the case, for debugging.
func (c *runnerT) String() string { return "conformance case " + strconv.Quote(c.name) }
