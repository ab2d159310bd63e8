package host_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/wapr-dev/wapr"

// listedPackage is the part of `go list -json` the rules need.
type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

// TestDependencyRules enforces DESIGN.md §2: who may import whom. It fails
// naming the package and the import that breaks a rule.
func TestDependencyRules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	cmd := exec.Command("go", "list", "-json", "-deps=false", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := decodePackages(t, out)
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, v := range violations(rel, p) {
			t.Errorf("%s: %s", p.ImportPath, v)
		}
	}
}

func decodePackages(t *testing.T, out []byte) []listedPackage {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []listedPackage
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if err == io.EOF {
			return pkgs
		}
		if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func within(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

func ours(path string) (string, bool) {
	if path == module {
		return "", true
	}
	if strings.HasPrefix(path, module+"/") {
		return strings.TrimPrefix(path, module+"/"), true
	}
	return "", false
}

// violations lists the rules package rel (a path inside the module) breaks.
func violations(rel string, p listedPackage) []string {
	var out []string
	stdOnly := func(what, self string) {
		for _, d := range p.Deps {
			if dep, isOurs := ours(d); isOurs && within(dep, self) {
				continue
			}
			if !isStd(d) {
				out = append(out, what+" may use the standard library only, but depends on "+d)
			}
		}
	}
	for _, imp := range p.Imports {
		// The load harness is a client, not part of the sidecar: it uses
		// fasthttp's client so the load generator costs little CPU.
		if strings.HasPrefix(imp, "github.com/valyala/fasthttp") && !within(rel, "host/internal/httpapi") && !within(rel, "cmd/wapr-bench") {
			out = append(out, "only host/internal/httpapi (and the cmd/wapr-bench load tool) may import fasthttp, found "+imp)
		}
		if strings.HasPrefix(imp, "github.com/bytecodealliance/wasmtime-go") && !within(rel, "host/internal/engine/wasmtime") {
			out = append(out, "only host/internal/engine/wasmtime may import wasmtime-go, found "+imp)
		}
		dep, isOurs := ours(imp)
		if !isOurs {
			continue
		}
		switch {
		case within(rel, "sdk-guest"):
			if !within(dep, "abi") && !within(dep, "sdk-guest") {
				out = append(out, "sdk-guest may import abi only, found "+imp)
			}
		case within(rel, "components-wasm"), within(rel, "examples") && strings.Contains(rel, "wasm"):
			if !within(dep, "abi") && !within(dep, "sdk-guest") && !within(dep, "components-wasm/internal") {
				out = append(out, "a Wasm component may import sdk-guest, abi and components-wasm/internal only, found "+imp)
			}
		case within(rel, "builtin"):
			if !within(dep, "host/component") && !within(dep, "builtin") {
				out = append(out, "a builtin driver may import host/component only, found "+imp)
			}
		case within(rel, "conformance"):
			if !within(dep, "host/component") && !within(dep, "conformance") {
				out = append(out, "conformance may import host/component only, found "+imp)
			}
		case within(rel, "host/internal"):
			if !within(dep, "host") && !within(dep, "abi") {
				out = append(out, "the host may not import "+imp+" (drivers are wired in cmd/)")
			}
		case within(rel, "host"):
			if !within(dep, "host") && !within(dep, "abi") {
				out = append(out, "the host may not import "+imp+" (drivers are wired in cmd/)")
			}
		}
	}
	switch {
	case within(rel, "abi"):
		stdOnly("abi", "abi")
	case within(rel, "host/component"):
		stdOnly("the component contract", "host/component")
	}
	return out
}

// TestDependencyRulesCatch proves the rules above fire on bad imports.
func TestDependencyRulesCatch(t *testing.T) {
	bad := []struct {
		rel string
		pkg listedPackage
	}{
		{"builtin/state/redis", listedPackage{Imports: []string{module + "/host/internal/api"}}},
		{"abi", listedPackage{Deps: []string{"fmt", "github.com/valyala/fasthttp"}}},
		{"host/component/state", listedPackage{Deps: []string{"go.yaml.in/yaml/v3"}}},
		{"host/internal/api", listedPackage{Imports: []string{"github.com/valyala/fasthttp"}}},
		{"host/internal/api", listedPackage{Imports: []string{module + "/builtin/state/memory"}}},
		{"sdk-guest", listedPackage{Imports: []string{module + "/host/component"}}},
		{"conformance/state", listedPackage{Imports: []string{module + "/host/internal/api"}}},
	}
	for _, b := range bad {
		if v := violations(b.rel, b.pkg); len(v) == 0 {
			t.Errorf("%s importing %v %v: no violation reported", b.rel, b.pkg.Imports, b.pkg.Deps)
		}
	}
	if v := violations("host/internal/httpapi", listedPackage{Imports: []string{"github.com/valyala/fasthttp", module + "/host/internal/api"}}); len(v) != 0 {
		t.Errorf("allowed imports reported: %v", v)
	}
}
