package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/wasmtest"
)

// TestRunDefaults runs the sidecar as `wapr run` would on a bare machine
// (embedded defaults, no YAML), saves and reads state like the README's
// curl commands, then stops it through POST /v1.0/shutdown.
func TestRunDefaults(t *testing.T) {
	base, stdout, done := startRun(t, "--dapr-http-port", "0", "--app-id", "quickstart")
	if !strings.Contains(stdout(), "statestore") || !strings.Contains(stdout(), "state.in-memory") {
		t.Errorf("startup output does not list the default components:\n%s", stdout())
	}
	res, err := http.Post(base+"/v1.0/state/statestore", "application/json", strings.NewReader(`[{"key":"a","value":1}]`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		t.Fatalf("save: %d", res.StatusCode)
	}
	res, err = http.Get(base + "/v1.0/state/statestore/a")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "1" {
		t.Fatalf("get: %d %q", res.StatusCode, body)
	}
	res, err = http.Post(base+"/v1.0/shutdown", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wapr did not stop after POST /v1.0/shutdown")
	}
	if !strings.Contains(stdout(), "wapr stopped") {
		t.Errorf("no clean stop in the output:\n%s", stdout())
	}
}

// TestRunReportsBrokenComponent: a broken YAML is reported with its file and
// reason at start, and the other components still serve.
func TestRunReportsBrokenComponent(t *testing.T) {
	dir := t.TempDir()
	yaml := `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: good
spec:
  type: state.in-memory
  version: v1
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: bad
spec:
  type: state.cassandra-of-dreams
  version: v1
`
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	base, stdout, done := startRun(t, "--dapr-http-port", "0", "--resources-path", dir)
	out := stdout()
	if !strings.Contains(out, "bad") || !strings.Contains(out, "state.cassandra-of-dreams") || !strings.Contains(out, "failed (1)") {
		t.Errorf("startup output does not report the broken component:\n%s", out)
	}
	res, err := http.Post(base+"/v1.0/state/good", "application/json", strings.NewReader(`[{"key":"a","value":1}]`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		t.Fatalf("the good store does not serve: %d", res.StatusCode)
	}
	http.Post(base+"/v1.0/shutdown", "", nil)
	<-done
}

func TestVersionAndUsage(t *testing.T) {
	if got := run([]string{"nonsense"}); got != 2 {
		t.Errorf("unknown command exit %d, want 2", got)
	}
	if got := run([]string{"run", "--no-such-flag"}); got != 2 {
		t.Errorf("bad flag exit %d, want 2", got)
	}
	if !regexp.MustCompile(`^wapr \S+ \(go`).MatchString(versionString()) {
		t.Errorf("version %q", versionString())
	}
}

// startRun runs `wapr run args...` in-process and returns its API base URL
// once it has printed "ready", a function returning its output (all of it
// once the exit code has been received), and its exit code.
//
// Unless args name a --config, the sidecar resolves names with an empty
// static table: the self-hosted default, mdns, would announce the test's app
// id on the machine's network (TestInvokeMDNS tests mdns in a namespace).
func startRun(t *testing.T, args ...string) (string, func() string, <-chan int) {
	t.Helper()
	if !slices.Contains(args, "--config") {
		args = append(args, "--config", writeConfig(t, "    component: static\n    configuration:\n      apps: {}\n"))
	}
	if !slices.Contains(args, "--dapr-grpc-port") {
		// Tests run many sidecars at once: not on daprd's fixed 50001.
		args = append(args, "--dapr-grpc-port", "0")
	}
	if !slices.Contains(args, "--metrics-port") && !slices.Contains(args, "--enable-metrics=false") {
		// Nor on daprd's fixed metrics port 9090.
		args = append(args, "--metrics-port", "0")
	}
	pr, pw := io.Pipe()
	var (
		mu        sync.Mutex
		out       strings.Builder
		base      string
		ready     = make(chan struct{})
		collected = make(chan struct{})
		done      = make(chan int, 1)
	)
	go func() {
		defer close(collected)
		addrRE := regexp.MustCompile(`listening on (http://\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			l := sc.Text()
			mu.Lock()
			out.WriteString(l + "\n")
			if m := addrRE.FindStringSubmatch(l); m != nil {
				base = m[1]
			}
			mu.Unlock()
			if l == "ready" {
				close(ready)
			}
		}
	}()
	go func() {
		code := runSidecar(args, pw, io.Discard)
		pw.Close()
		<-collected
		done <- code
	}()
	output := func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	select {
	case <-ready:
	case <-collected:
		t.Fatalf("wapr exited early:\n%s", output())
	case <-time.After(10 * time.Second):
		t.Fatalf("wapr did not become ready:\n%s", output())
	}
	mu.Lock()
	defer mu.Unlock()
	return base, output, done
}

// TestInspect prints a real module's descriptor and refuses a non-module.
func TestInspect(t *testing.T) {
	path := wasmtest.Build(t, "./host/internal/wasmcomp/testdata/guests/misbehave")
	var out, errOut strings.Builder
	if code := inspectModules([]string{path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"ABI:           v1.0", "types:         state.misbehave", "wapr_sock_v1", "sha256:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	bad := filepath.Join(t.TempDir(), "x.wasm")
	os.WriteFile(bad, []byte("nope"), 0o644)
	out.Reset()
	errOut.Reset()
	if code := inspectModules([]string{bad}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "x.wasm") {
		t.Fatalf("bad module: exit %d, %q", code, errOut.String())
	}
}
