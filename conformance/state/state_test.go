package state_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/state/memory"
	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/broken"
	statesuite "github.com/wapr-dev/wapr/conformance/state"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// TestInMemory is how a component's own tests use the suite.
func TestInMemory(t *testing.T) {
	features := statesuite.Run(t, func() state.Store { return memory.New() }, statesuite.Config{Type: "state.in-memory"})
	for _, f := range features {
		t.Log(f)
		if f.Status != conformance.StatusPass || !f.Claimed {
			t.Errorf("in-memory store: %v, want claimed and verified", f)
		}
	}
}

// quick shortens the TTL waits for components whose TTL handling is known.
var quick = statesuite.Config{TTLWait: 1500 * time.Millisecond, TTLHold: 1200 * time.Millisecond}

// runRecorded runs the suite under a conformance.Runner, as a CLI would.
func runRecorded(t *testing.T, newStore func() state.Store, cfg statesuite.Config) (map[string]conformance.Result, map[string]conformance.FeatureResult) {
	t.Helper()
	var r conformance.Runner
	var features []conformance.FeatureResult
	r.Run(t.Context(), "state", func(ct conformance.T) { features = statesuite.Run(ct, newStore, cfg) })
	results := map[string]conformance.Result{}
	for _, res := range r.Results() {
		results[res.Name] = res
	}
	byName := map[string]conformance.FeatureResult{}
	for _, f := range features {
		byName[f.Feature] = f
	}
	return results, byName
}

// failedCases lists the failed leaf cases ("state/group/case").
func failedCases(results map[string]conformance.Result) []string {
	var out []string
	for name, res := range results {
		if strings.Count(name, "/") == 2 && res.Status == conformance.StatusFail {
			out = append(out, strings.TrimPrefix(name, "state/"))
		}
	}
	slices.Sort(out)
	return out
}

func TestInMemoryUnderRunner(t *testing.T) {
	results, features := runRecorded(t, func() state.Store { return memory.New() }, statesuite.Config{})
	if failed := failedCases(results); len(failed) > 0 {
		for _, name := range failed {
			t.Errorf("%s: %s", name, results["state/"+name].Reason)
		}
	}
	for _, name := range []string{"state", "state/init", "state/etag/concurrent-writers", "state/transactions/atomic-on-etag-mismatch", "state/ttl/expires", "state/lifecycle/operations-after-close"} {
		if res, ok := results[name]; !ok || res.Status != conformance.StatusPass {
			t.Errorf("result %q = %+v, want a pass", name, res)
		}
	}
	if got := features["ETAG"]; got.Status != conformance.StatusPass || got.Case != "state/etag" {
		t.Errorf("ETAG verdict = %+v", got)
	}
}

// TestControlPasses runs the broken store with no fault on: it must pass,
// so the failures below come from the faults alone.
func TestControlPasses(t *testing.T) {
	t.Parallel()
	results, features := runRecorded(t, func() state.Store { return broken.NewStore(broken.StoreFaults{}) }, quick)
	if failed := failedCases(results); len(failed) > 0 {
		t.Errorf("control store failed %v", failed)
	}
	for _, f := range features {
		if f.Status != conformance.StatusPass {
			t.Errorf("control store: %v", f)
		}
	}
}

// TestNothingDeclared runs a correct store that declares no feature: the
// suite must check that each is refused cleanly, and pass.
func TestNothingDeclared(t *testing.T) {
	t.Parallel()
	results, features := runRecorded(t, func() state.Store {
		return broken.NewStore(broken.StoreFaults{Declare: []component.Feature{}})
	}, quick)
	if failed := failedCases(results); len(failed) > 0 {
		t.Errorf("store without features failed %v", failed)
	}
	for _, name := range []string{"etag/refused-cleanly-set", "etag/refused-cleanly-delete", "transactions/refused-cleanly", "ttl/ignored-or-refused"} {
		if res := results["state/"+name]; res.Status != conformance.StatusPass {
			t.Errorf("%s = %+v, want a pass", name, res)
		}
	}
	for _, f := range []string{"ETAG", "TRANSACTIONAL", "TTL"} {
		if got := features[f]; got.Claimed || got.Status != conformance.StatusPass {
			t.Errorf("verdict on %s = %+v, want not claimed and verified absent", f, got)
		}
	}
}

// TestBrokenStoresFail proves the suite can fail: each fault must fail
// exactly the cases that check what it breaks.
func TestBrokenStoresFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		faults     broken.StoreFaults
		feature    string
		wantFailed []string
	}{
		{
			name:    "ignores-etags",
			faults:  broken.StoreFaults{IgnoreETags: true},
			feature: "ETAG",
			wantFailed: []string{
				"etag/bulk-delete-with-stale-etag",
				"etag/bulk-set-with-stale-etag",
				"etag/concurrent-writers",
				"etag/delete-missing-key-with-etag",
				"etag/delete-missing-key-with-invalid-etag",
				"etag/delete-with-invalid-etag",
				"etag/delete-with-stale-etag",
				"etag/first-write-existing-key",
				"etag/first-write-with-etag",
				"etag/set-missing-key-with-etag",
				"etag/set-missing-key-with-invalid-etag",
				"etag/set-with-invalid-etag",
				"etag/set-with-stale-etag",
				"transactions/atomic-on-etag-mismatch",
			},
		},
		{
			name:       "never-expires",
			faults:     broken.StoreFaults{NeverExpire: true},
			feature:    "TTL",
			wantFailed: []string{"ttl/expires"},
		},
		{
			name:       "half-transactions",
			faults:     broken.StoreFaults{HalfTransactions: true},
			feature:    "TRANSACTIONAL",
			wantFailed: []string{"transactions/atomic-on-etag-mismatch"},
		},
		{
			name:       "ttl-without-declaring-it",
			faults:     broken.StoreFaults{Declare: []component.Feature{state.FeatureETag, state.FeatureTransactional}, SilentTTL: true},
			feature:    "TTL",
			wantFailed: []string{"ttl/ignored-or-refused"},
		},
		{
			name:       "transactions-without-declaring-them",
			faults:     broken.StoreFaults{Declare: []component.Feature{state.FeatureETag, state.FeatureTTL}, SilentTransactions: true},
			feature:    "TRANSACTIONAL",
			wantFailed: []string{"transactions/refused-cleanly"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			results, features := runRecorded(t, func() state.Store { return broken.NewStore(tc.faults) }, quick)
			got := failedCases(results)
			for _, name := range got {
				t.Logf("%s: %s", name, results["state/"+name].Reason)
			}
			if !slices.Equal(got, tc.wantFailed) {
				t.Errorf("failed cases:\n got %v\nwant %v", got, tc.wantFailed)
			}
			if got := features[tc.feature]; got.Status != conformance.StatusFail {
				t.Errorf("verdict on %s = %+v, want a failure", tc.feature, got)
			}
			if res := results["state"]; res.Status != conformance.StatusFail {
				t.Errorf("top-level result %+v, want a failure", res)
			}
		})
	}
}

func TestNilStore(t *testing.T) {
	var r conformance.Runner
	r.Run(context.Background(), "state", func(ct conformance.T) {
		statesuite.Run(ct, func() state.Store { return nil }, statesuite.Config{})
	})
	if !r.Failed() {
		t.Error("a nil store passed")
	}
}

// TestInstances: with Config.Instances >= 2 a store whose instances share a
// backend passes instances/shared-state, and one whose instances keep
// their own data fails exactly that case, naming the cause.
func TestInstances(t *testing.T) {
	t.Parallel()
	cfg := quick
	cfg.Instances = 8
	t.Run("shared", func(t *testing.T) {
		t.Parallel()
		var first *broken.Store
		results, features := runRecorded(t, func() state.Store {
			if first == nil {
				first = broken.NewStore(broken.StoreFaults{})
				return first
			}
			return first.Twin()
		}, cfg)
		if failed := failedCases(results); len(failed) > 0 {
			t.Errorf("failed %v", failed)
		}
		if res := results["state/instances/shared-state"]; res.Status != conformance.StatusPass {
			t.Errorf("instances/shared-state = %+v, want a pass", res)
		}
		if got := features[statesuite.FeatureSharedState]; !got.Claimed || got.Status != conformance.StatusPass {
			t.Errorf("verdict %+v, want claimed and verified", got)
		}
	})
	t.Run("instance-local", func(t *testing.T) {
		t.Parallel()
		results, features := runRecorded(t, func() state.Store { return broken.NewStore(broken.StoreFaults{}) }, cfg)
		if got, want := failedCases(results), []string{"instances/shared-state"}; !slices.Equal(got, want) {
			t.Errorf("failed cases %v, want %v", got, want)
		}
		reason := results["state/instances/shared-state"].Reason
		for _, want := range []string{"instance-local state", "8 instances", "wapr.dev/pool-size"} {
			if !strings.Contains(reason, want) {
				t.Errorf("the failure does not say %q: %s", want, reason)
			}
		}
		if got := features[statesuite.FeatureSharedState]; got.Status != conformance.StatusFail {
			t.Errorf("verdict %+v, want a failure", got)
		}
	})
	t.Run("one-instance", func(t *testing.T) {
		t.Parallel()
		results, _ := runRecorded(t, func() state.Store { return broken.NewStore(broken.StoreFaults{}) }, quick)
		if res := results["state/instances"]; res.Status != conformance.StatusSkip {
			t.Errorf("instances = %+v, want skipped with one instance", res)
		}
	})
}
