package host_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
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

// TestDependencyRules enforces docs/architecture.md ("Packages and who may
// import whom"), in the default build and in the wasmtime build. It fails
// naming the package and the import that breaks a rule.
func TestDependencyRules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	for _, build := range []struct{ name, tags string }{{"default", ""}, {"wasmtime", "wasmtime"}} {
		t.Run(build.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"list", "-json", "-deps=false"}
			if build.tags != "" {
				args = append(args, "-tags", build.tags)
			}
			cmd := exec.Command("go", append(args, module+"/...")...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go %s: %v", strings.Join(args, " "), err)
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
		})
	}
}

// wasmPackages are the packages that run WebAssembly: the API layer and
// the transports must not depend on them.
var wasmPackages = []string{
	module + "/host/internal/wasmcomp",
	module + "/host/internal/engine",
	"github.com/tetratelabs/wazero",
	"github.com/bytecodealliance/wasmtime-go",
}

func isWasmPackage(path string) bool {
	for _, w := range wasmPackages {
		if path == w || strings.HasPrefix(path, w+"/") {
			return true
		}
	}
	return false
}

// grpcapiThirdParty are the third-party imports host/internal/grpcapi may
// have: grpc, Dapr's generated packages, and the protobuf packages they are
// built on.
var grpcapiThirdParty = []string{
	"google.golang.org/grpc",
	"google.golang.org/protobuf/",
	"google.golang.org/genproto/googleapis/rpc/",
	"github.com/dapr/dapr/pkg/proto/",
}

// daprPlacementEngine are the packages of github.com/dapr/dapr that
// host/internal/placement may import: Dapr's placement server, its hashing,
// and what the server needs to run without Sentry.
var daprPlacementEngine = []string{
	"github.com/dapr/dapr/pkg/placement",
	"github.com/dapr/dapr/pkg/placement/hashing",
	"github.com/dapr/dapr/pkg/placement/peers",
	"github.com/dapr/dapr/pkg/healthz",
	"github.com/dapr/dapr/pkg/modes",
	"github.com/dapr/dapr/pkg/security",
}

// daprSchedulerEngine are the packages of github.com/dapr/dapr that
// host/internal/scheduler may import: Dapr's scheduler server and what it
// needs to run without Sentry.
var daprSchedulerEngine = []string{
	"github.com/dapr/dapr/pkg/scheduler/server",
	"github.com/dapr/dapr/pkg/healthz",
	"github.com/dapr/dapr/pkg/modes",
	"github.com/dapr/dapr/pkg/security",
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
	// The API layer and its transports work the same whoever serves a
	// component: they must not depend on the Wasm packages, in any build.
	if within(rel, "host/internal/api") || within(rel, "host/internal/httpapi") || within(rel, "host/internal/grpcapi") || within(rel, "host/internal/telemetry") {
		for _, d := range p.Deps {
			if isWasmPackage(d) {
				out = append(out, "the API layer and its transports may not depend on the Wasm packages, found "+d)
			}
		}
	}
	for _, imp := range p.Imports {
		// host/internal/placement embeds Dapr's placement server and uses
		// its consistent hashing: wapr never decides placement itself.
		placementEngine := within(rel, "host/internal/placement") && slices.ContainsFunc(daprPlacementEngine, func(p string) bool { return imp == p })
		// host/internal/scheduler embeds Dapr's scheduler server (etcd):
		// reminders are kept and fired by Dapr's engine, never by wapr.
		schedulerEngine := within(rel, "host/internal/scheduler") && slices.Contains(daprSchedulerEngine, imp)
		if strings.HasPrefix(imp, "github.com/dapr/dapr/") && !strings.HasPrefix(imp, "github.com/dapr/dapr/pkg/proto/") && !placementEngine && !schedulerEngine {
			out = append(out, "only Dapr's generated pkg/proto packages (and, in host/internal/placement, its placement engine) may be imported from github.com/dapr/dapr, found "+imp)
		}
		if strings.HasPrefix(imp, "github.com/dapr/dapr/") && within(rel, "host") && !within(rel, "host/internal/grpcapi") && !within(rel, "host/internal/placement") && !within(rel, "host/internal/internalsgrpc") && !within(rel, "host/internal/scheduler") {
			out = append(out, "in the host only host/internal/grpcapi, host/internal/internalsgrpc, host/internal/placement and host/internal/scheduler may import Dapr's packages, found "+imp)
		}
		// host/internal/internalsgrpc speaks daprd's sidecar protocol: a
		// transport like grpcapi, held to the same imports.
		for _, pkg := range []string{"host/internal/grpcapi", "host/internal/internalsgrpc"} {
			if within(rel, pkg) && !isStd(imp) {
				if _, isOurs := ours(imp); !isOurs && !slices.ContainsFunc(grpcapiThirdParty, func(pfx string) bool { return strings.HasPrefix(imp, pfx) }) {
					out = append(out, pkg+" may import grpc, protobuf and Dapr's pkg/proto packages only, found "+imp)
				}
			}
		}
		if within(rel, "host/internal/api") && (strings.HasPrefix(imp, "google.golang.org/grpc") || strings.HasPrefix(imp, "github.com/valyala/fasthttp")) {
			out = append(out, "host/internal/api is transport-neutral: it may not import "+imp)
		}
		// The load harness is a client, not part of the sidecar: it uses
		// fasthttp's client so the load generator costs little CPU.
		if strings.HasPrefix(imp, "github.com/valyala/fasthttp") && !within(rel, "host/internal/httpapi") && !within(rel, "cmd/wapr-bench") {
			out = append(out, "only host/internal/httpapi (and the cmd/wapr-bench load tool) may import fasthttp, found "+imp)
		}
		// HTTP/2 framing is the gRPC transport's business (and the load
		// harness's client).
		if strings.HasPrefix(imp, "golang.org/x/net/http2") && !within(rel, "host/internal/h2grpc") && !within(rel, "cmd/wapr-bench") {
			out = append(out, "only host/internal/h2grpc (and the cmd/wapr-bench load tool) may import golang.org/x/net/http2, found "+imp)
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
		case within(rel, "host/internal/api"):
			// Spans of component calls: host/internal/tracing holds the
			// OpenTelemetry types.
			if !within(dep, "host/internal/api") && !within(dep, "host/component") && !within(dep, "host/internal/tracing") {
				out = append(out, "the API layer may import host/component and host/internal/tracing only, found "+imp)
			}
		case within(rel, "host/internal/httpapi"), within(rel, "host/internal/grpcapi"), within(rel, "host/internal/telemetry"):
			// The transports report to the metrics; the metrics decorate
			// the API's components; host/internal/h2grpc is the gRPC
			// API's transport, host/internal/rawsock the sockets' raw
			// reads and writes.
			if !within(dep, "host/internal/api") && !within(dep, "host/component") && !within(dep, "host/internal/telemetry") && !within(dep, "host/internal/tracing") && !within(dep, "host/internal/h2grpc") && !within(dep, "host/internal/rawsock") {
				out = append(out, "the API's transports and metrics may import host/internal/api, host/internal/telemetry, host/internal/tracing, host/internal/h2grpc, host/internal/rawsock and host/component only, found "+imp)
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
		{"host/internal/api", listedPackage{Deps: []string{module + "/host/internal/wasmcomp"}}},
		{"host/internal/httpapi", listedPackage{Deps: []string{"github.com/tetratelabs/wazero/api"}}},
		{"host/internal/grpcapi", listedPackage{Deps: []string{"github.com/bytecodealliance/wasmtime-go/v39"}}},
		{"host/internal/grpcapi", listedPackage{Imports: []string{module + "/host/internal/wasmcomp"}}},
		{"host/internal/grpcapi", listedPackage{Imports: []string{"github.com/dapr/dapr/pkg/runtime"}}},
		{"host/internal/grpcapi", listedPackage{Imports: []string{"github.com/valyala/fasthttp"}}},
		{"host/internal/httpapi", listedPackage{Imports: []string{"github.com/dapr/dapr/pkg/proto/runtime/v1"}}},
		{"host/internal/api", listedPackage{Imports: []string{"google.golang.org/grpc"}}},
		{"host/internal/api", listedPackage{Imports: []string{module + "/host/internal/telemetry"}}},
		{"host/internal/telemetry", listedPackage{Imports: []string{module + "/host/internal/wasmcomp"}}},
		{"host/internal/actors", listedPackage{Imports: []string{"github.com/dapr/dapr/pkg/placement/hashing"}}},
		{"host/internal/placement", listedPackage{Imports: []string{"github.com/dapr/dapr/pkg/actors"}}},
	}
	for _, b := range bad {
		if v := violations(b.rel, b.pkg); len(v) == 0 {
			t.Errorf("%s importing %v %v: no violation reported", b.rel, b.pkg.Imports, b.pkg.Deps)
		}
	}
	if v := violations("host/internal/httpapi", listedPackage{Imports: []string{"github.com/valyala/fasthttp", module + "/host/internal/api"}}); len(v) != 0 {
		t.Errorf("allowed imports reported: %v", v)
	}
	grpcOK := listedPackage{Imports: []string{
		module + "/host/internal/api", module + "/host/component/state", "google.golang.org/grpc/codes",
		"github.com/dapr/dapr/pkg/proto/runtime/v1", "google.golang.org/protobuf/types/known/anypb",
		"google.golang.org/genproto/googleapis/rpc/errdetails",
	}}
	if v := violations("host/internal/grpcapi", grpcOK); len(v) != 0 {
		t.Errorf("allowed grpcapi imports reported: %v", v)
	}
}
