package conformance_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/host"
	"github.com/wapr-dev/wapr/host/component/bindings"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

// knownBugs runs a suite under a *testing.T, every case a real subtest,
// except that the cases it names are skipped before they start, with the
// bug as the reason: a case that fails because of a known bug in a driver
// or the host is set aside without hiding the rest of the run.
type knownBugs struct {
	*testing.T
	root string            // the name of the T the suite was started on
	bugs map[string]string // case ("subscriptions/cancel-stops-only-that-one") → the bug
}

var _ conformance.Parent = (*knownBugs)(nil)

// suiteT returns the T to hand a suite: t itself when no bug is known.
func suiteT(t *testing.T, bugs map[string]string) conformance.T {
	if len(bugs) == 0 {
		return t
	}
	return &knownBugs{T: t, root: t.Name(), bugs: bugs}
}

// Run implements conformance.Parent.
func (k *knownBugs) Run(name string, f func(t conformance.T)) bool {
	return k.T.Run(name, func(t *testing.T) {
		if bug, ok := k.bugs[strings.TrimPrefix(t.Name(), k.root+"/")]; ok {
			t.Skipf("known bug, not fixed here: %s", bug)
		}
		f(&knownBugs{T: t, root: k.root, bugs: k.bugs})
	})
}

// verdicts checks what a suite returned: no verdict may fail, and each
// feature in want must be verified (StatusPass) with the claim want gives
// (true: claimed and working; false: not claimed and refused cleanly).
func verdicts(t *testing.T, got []conformance.FeatureResult, want map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range got {
		t.Logf("verdict: %v", f)
		seen[f.Feature] = true
		if f.Status == conformance.StatusFail {
			t.Errorf("verdict: %v", f)
			continue
		}
		claimed, wanted := want[f.Feature]
		if !wanted || f.Status == conformance.StatusSkip && f.Reason == "not run" {
			continue // not run: -run left the cases out
		}
		if f.Claimed != claimed || f.Status != conformance.StatusPass {
			t.Errorf("verdict on %s = %v, want claimed=%t and verified", f.Feature, f, claimed)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if !seen[name] {
			t.Errorf("no verdict on %s", name)
		}
	}
}

// wasmCacheDir holds the compiled Wasm modules of one TestMatrix run,
// shared by its cells so that each module is compiled once.
var wasmCacheDir string

// componentYAML writes a Component resource and returns its path.
func componentYAML(t *testing.T, name, typ string, annotations, metadata map[string]string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: %s\n", name)
	if len(annotations) > 0 {
		b.WriteString("  annotations:\n")
		for _, k := range slices.Sorted(maps.Keys(annotations)) {
			fmt.Fprintf(&b, "    %s: %q\n", k, annotations[k])
		}
	}
	fmt.Fprintf(&b, "spec:\n  type: %s\n  version: v1\n  metadata:\n", typ)
	for _, k := range slices.Sorted(maps.Keys(metadata)) {
		fmt.Fprintf(&b, "  - name: %s\n    value: %q\n", k, metadata[k])
	}
	p := filepath.Join(t.TempDir(), "component.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wasmComponent builds the Wasm component in pkg (a path from the module
// root) and loads it outside a sidecar, as `wapr conformance --wasm` does:
// the host serves it (sandbox, pool, ABI) exactly as the sidecar would.
func wasmComponent(t *testing.T, pkg, typ string, annotations, metadata map[string]string) *host.ComponentFactory {
	t.Helper()
	start := time.Now()
	f, err := host.LoadComponentSource(t.Context(), host.ComponentSource{
		ComponentFile: componentYAML(t, "matrix", typ, annotations, metadata),
		WasmFile:      wasmtest.Build(t, pkg),
		WasmCacheDir:  wasmCacheDir,
		// CI runs the tests a second time with WAPR_WASM_ENGINE=wasmtime
		// (and -tags wasmtime): the Wasm rows then run on wasmtime.
		WasmEngine: os.Getenv("WAPR_WASM_ENGINE"),
	})
	if err != nil {
		t.Fatalf("loading %s: %v", pkg, err)
	}
	t.Logf("%s served by %s (built and loaded in %s)", typ, f.Served, time.Since(start).Round(time.Millisecond))
	return f
}

// newFrom turns a factory into a suite's constructor: a construction error
// fails t and yields nil, which the suite reports as a failure too.
func newFrom[C any](t *testing.T, f *host.ComponentFactory) func() C {
	return func() C {
		var zero C
		c, err := f.New()
		if err != nil {
			t.Errorf("constructing %s: %v", f.Metadata.Type, err)
			return zero
		}
		typed, ok := c.(C)
		if !ok {
			t.Errorf("%s is a %T, not a %T", f.Metadata.Type, c, zero)
			return zero
		}
		return typed
	}
}

// dataContains checks that the response's data contains each of want.
func dataContains(want ...string) func(*bindings.InvokeResponse) error {
	return func(r *bindings.InvokeResponse) error {
		if r == nil {
			return fmt.Errorf("no response")
		}
		for _, w := range want {
			if !strings.Contains(string(r.Data), w) {
				return fmt.Errorf("data %q does not contain %q", r.Data, w)
			}
		}
		return nil
	}
}

// dataEquals checks the response's data.
func dataEquals(want string) func(*bindings.InvokeResponse) error {
	return func(r *bindings.InvokeResponse) error {
		if r == nil {
			return fmt.Errorf("no response")
		}
		if string(r.Data) != want {
			return fmt.Errorf("data %q, want %q", r.Data, want)
		}
		return nil
	}
}
