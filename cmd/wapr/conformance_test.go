package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wapr-dev/wapr/host/wasmtest"
)

func componentFile(t *testing.T, typ string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	yaml := "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: under-test\n  annotations:\n    wapr.dev/pool-size: \"1\"\nspec:\n  type: " + typ + "\n  version: v1\n"
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConformanceCommand runs `wapr conformance` on a third party's .wasm
// (the SDK example, with only its YAML) and on a deliberately broken one.
func TestConformanceCommand(t *testing.T) {
	t.Run("passes", func(t *testing.T) {
		wasm := wasmtest.Build(t, "./examples/state-memory-wasm")
		var out, errOut strings.Builder
		code := runConformance([]string{"--component", componentFile(t, "state.example-memory"), "--wasm", wasm, "--json"}, &out, &errOut)
		var report conformanceReport
		if err := json.Unmarshal([]byte(out.String()), &report); err != nil {
			t.Fatalf("--json output: %v\n%s\n%s", err, out.String(), errOut.String())
		}
		if code != 0 || report.Failed != 0 || report.Passed < 20 {
			t.Fatalf("exit %d, %d passed, %d failed:\n%s", code, report.Passed, report.Failed, out.String())
		}
		if !strings.HasPrefix(report.Served, "wasm (wazero") {
			t.Errorf("served by %q", report.Served)
		}
	})
	t.Run("fails naming the case", func(t *testing.T) {
		wasm := wasmtest.Build(t, "./cmd/wapr/testdata/guests/noetag")
		var out, errOut strings.Builder
		code := runConformance([]string{"--component", componentFile(t, "state.noetag"), "--wasm", wasm}, &out, &errOut)
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s\n%s", code, out.String(), errOut.String())
		}
		if !strings.Contains(out.String(), "FAIL state/etag/") || !strings.Contains(out.String(), "ETAG                     claimed      fail") {
			t.Fatalf("the report does not name the failing ETag cases:\n%s", out.String())
		}
	})
	t.Run("usage", func(t *testing.T) {
		var out, errOut strings.Builder
		if code := runConformance(nil, &out, &errOut); code != 2 {
			t.Fatalf("exit %d", code)
		}
	})
}
