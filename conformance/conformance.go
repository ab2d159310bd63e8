// Package conformance holds what the component conformance suites share: the
// T they run against, a Runner that records results outside `go test`, and
// the result types a report is made of.
//
// The suites themselves live in the sub-packages state, pubsub and bindings.
// Each offers one function in the style of testing/fstest.TestFS:
//
//	func Run(t conformance.T, newComponent func() X, cfg Config) []conformance.FeatureResult
//
// Run calls newComponent, initialises the component itself, runs every case
// as a subtest with a stable name, and closes the component at the end. It
// returns, for each feature, whether the component claimed it and whether the
// suite verified it.
//
// # From a test
//
// *testing.T implements T, so a component's own tests call a suite directly:
//
//	func TestConformance(t *testing.T) {
//		statesuite.Run(t, func() state.Store { return mystore.New() }, statesuite.Config{
//			Type:     "state.mystore",
//			Metadata: map[string]string{"host": addr},
//		})
//	}
//
// # From a program
//
// A Runner implements T for programs such as `wapr conformance`: each case
// runs on its own goroutine, Fatalf and Skipf end it with runtime.Goexit as
// in package testing, and Results returns every case with its status, reason
// and duration:
//
//	var r conformance.Runner
//	var features []conformance.FeatureResult
//	r.Run(ctx, "state", func(t conformance.T) {
//		features = statesuite.Run(t, newStore, cfg)
//	})
//	for _, res := range r.Results() { … }
//
// # Features, both ways
//
// A declared feature must work and an undeclared one must be refused
// cleanly. What "refused cleanly" means is defined per feature in each
// suite's package comment; in general the call returns (no panic, no hang)
// and either reports an error wrapping component.ErrNotSupported or,
// where Dapr ignores the option for such components, has no effect beyond
// what the core operation does.
package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// T is the subset of *testing.T the suites use, so that a program can run
// them too. *testing.T implements it, and so does the T a Runner passes to
// its cases.
//
// Subtests are started with the package-level Run, not with a method: the
// signature of (*testing.T).Run takes a func(*testing.T), which no interface
// shared with other implementations can name.
type T interface {
	// Name returns the case's full name, its parents' names first, joined
	// with slashes.
	Name() string
	// Context is done just before the case's Cleanup functions run.
	Context() context.Context
	// Cleanup registers f to run when the case and its subtests have
	// finished, last registered first.
	Cleanup(f func())
	Helper()
	Logf(format string, args ...any)
	// Errorf records a failure and lets the case go on.
	Errorf(format string, args ...any)
	// Fatalf records a failure and ends the case. It must be called from
	// the goroutine running the case.
	Fatalf(format string, args ...any)
	// Skipf marks the case skipped and ends it. It must be called from the
	// goroutine running the case.
	Skipf(format string, args ...any)
	// Failed reports whether the case or one of its subtests failed.
	Failed() bool
	// Skipped reports whether the case was skipped.
	Skipped() bool
}

var _ T = (*testing.T)(nil)

// Parent is implemented by every T that can run subtests other than
// *testing.T, such as the T a Runner passes to its cases.
type Parent interface {
	T
	// Run runs f as a subtest named name and waits for it. It reports
	// whether the subtest passed or was skipped.
	Run(name string, f func(t T)) bool
}

// Run runs f as a subtest of t named name and waits for it, like
// (*testing.T).Run. It reports whether the subtest passed or was skipped.
// t must be a *testing.T or implement Parent; any other T fails.
func Run(t T, name string, f func(t T)) bool {
	switch p := t.(type) {
	case *testing.T:
		return p.Run(name, func(t *testing.T) { f(t) })
	case Parent:
		return p.Run(name, f)
	}
	t.Helper()
	t.Errorf("conformance: %T cannot run subtest %q: it is neither a *testing.T nor a conformance.Parent", t, name)
	return false
}

// Status is the outcome of one case.
type Status string

// The outcomes of a case.
const (
	StatusPass Status = "pass"
	StatusFail Status = "fail"
	StatusSkip Status = "skip"
)

// Result is the outcome of one case run by a Runner.
type Result struct {
	// Name is the case's full name, parents first, joined with slashes
	// ("state/etag/set-with-stale-etag").
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Reason is the first failure message of a failed case (or the names of
	// its failed subtests), the message of a skipped case, and empty for a
	// passed one.
	Reason string `json:"reason,omitempty"`
	// Log holds every message the case logged, in order, failures included.
	Log []string `json:"log,omitempty"`
	// Duration covers the case, its subtests and its Cleanup functions.
	Duration time.Duration `json:"duration"`
}

// FeatureResult says, for one feature, what the component claimed and what
// the suite found.
type FeatureResult struct {
	// Feature is a component.Feature ("ETAG"), an optional interface
	// ("state.BulkStore"), a behaviour the suite's Config claims
	// ("durable"), or a binding's operation ("operation create").
	Feature string `json:"feature"`
	// Claimed is true when the component declares the feature (in
	// Features, Operations or by implementing the interface) or the Config
	// says it has it.
	Claimed bool `json:"claimed"`
	// Status is StatusPass when the claim was verified: a claimed feature
	// works, an unclaimed one is refused cleanly. StatusFail when a case
	// checking it failed. StatusSkip when nothing checked it; Reason says
	// why.
	Status Status `json:"status"`
	// Case is the full name of the group of cases that checks the feature.
	Case   string `json:"case,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// String renders r for a one-line report, such as "ETAG claimed: pass".
func (r FeatureResult) String() string {
	claim := "not claimed"
	if r.Claimed {
		claim = "claimed"
	}
	s := fmt.Sprintf("%s %s: %s", r.Feature, claim, r.Status)
	if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	return s
}
