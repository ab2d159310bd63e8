package host_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	statememory "github.com/wapr-dev/wapr/builtin/state/memory"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

const misbehavePkg = "./host/internal/wasmcomp/testdata/guests/misbehave"

func misbehaveYAML(name string, metadata, annotations map[string]string) string {
	y := "---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: " + name + "\n"
	if len(annotations) > 0 {
		y += "  annotations:\n"
		for k, v := range annotations {
			y += "    " + k + ": \"" + v + "\"\n"
		}
	}
	y += "spec:\n  type: state.misbehave\n  version: v1\n  metadata:\n"
	for k, v := range metadata {
		y += "  - name: " + k + "\n    value: \"" + v + "\"\n"
	}
	return y
}

type metadataComponent struct {
	Name, Type, Runtime, Engine, ModuleDigest, ABIVersion, Note string
}

func componentsOf(t *testing.T, s *sidecar) map[string]metadataComponent {
	t.Helper()
	_, body := s.do(t, step{method: "GET", path: "/v1.0/metadata"})
	var md struct{ Components []metadataComponent }
	if err := json.Unmarshal(body, &md); err != nil {
		t.Fatal(err)
	}
	out := map[string]metadataComponent{}
	for _, c := range md.Components {
		out[c.Name] = c
	}
	return out
}

// TestWasmComponentsFromResourcesFolder: a .wasm beside the YAML serves the
// type it provides; a module that fails to init falls back to the builtin;
// wapr.dev/runtime pins either side; the metadata API tells which served.
func TestWasmComponentsFromResourcesFolder(t *testing.T) {
	wasm := wasmtest.Bytes(t, misbehavePkg)
	yaml := misbehaveYAML("sandboxed", map[string]string{"target": "127.0.0.1:1", "keyPrefix": "none"}, map[string]string{"wapr.dev/call-timeout": "1s"}) +
		misbehaveYAML("fellback", map[string]string{"target": "127.0.0.1:1", "failInit": "true"}, nil) +
		misbehaveYAML("pinned-native", map[string]string{"target": "127.0.0.1:1"}, map[string]string{"wapr.dev/runtime": "native"}) +
		misbehaveYAML("pinned-wasm-fails", map[string]string{"target": "127.0.0.1:1", "failInit": "true"}, map[string]string{"wapr.dev/runtime": "wasm"})
	s := startSidecarWith(t, hostConfig{yaml: map[string]string{"c.yaml": yaml}, files: map[string][]byte{"misbehave.wasm": wasm}}, func(r *hostRegistry) {
		r.RegisterStateStore("state.misbehave", func() state.Store { return statememory.New() })
	})
	comps := componentsOf(t, s)
	if c := comps["sandboxed"]; c.Runtime != "wasm" || c.Engine != engineName() || !strings.HasPrefix(c.ModuleDigest, "sha256:") || c.ABIVersion != "v1.0" {
		t.Errorf("sandboxed: %+v", c)
	}
	if c := comps["fellback"]; c.Runtime != "native" || !strings.Contains(c.Note, "told to fail") {
		t.Errorf("fellback: %+v", c)
	}
	if c := comps["pinned-native"]; c.Runtime != "native" || c.Note != "" {
		t.Errorf("pinned-native: %+v", c)
	}
	if _, ok := comps["pinned-wasm-fails"]; ok {
		t.Errorf("a component pinned to a failing wasm module is served")
	}
	// The sandboxed store answers through the HTTP API like any other, and
	// a trapping guest fails only its own request. (Trap texts differ
	// between engines: the golden file has wazero's.)
	s.portable = engineName() != "wazero"
	s.transcript(t, "wasm_misbehave", []step{
		{method: "POST", path: "/v1.0/state/sandboxed", body: `[{"key":"a","value":{"x":1}}]`},
		{method: "GET", path: "/v1.0/state/sandboxed/trap"},
		{method: "GET", path: "/v1.0/state/sandboxed/loop"},
		{method: "GET", path: "/v1.0/state/sandboxed/echo:still-serving"},
		{method: "GET", path: "/v1.0/state/sandboxed/nope"},
	})
	_, body := s.do(t, step{method: "GET", path: "/v1.0/metadata"})
	if !strings.Contains(string(body), "pinned-wasm-fails") || !strings.Contains(string(body), "told to fail") {
		t.Errorf("the failed component is not in the metadata: %s", body)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
