package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/builtin/nameresolution/mdns/mdnstest"
)

// These tests run real wapr processes, as operators do, with real HTTP apps
// behind them.

var built struct {
	once sync.Once
	path string
	err  error
}

// waprBinary builds wapr once per test run.
func waprBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "wapr-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "wapr")
		out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

var freePort = backendtest.FreePort

// nameApp is an app that answers every request with its own name.
func nameApp(t *testing.T, name string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/dapr/") {
			http.NotFound(w, r)
			return
		}
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s %s", name, r.Method, r.URL.RequestURI())
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// waprProcess is a running `wapr run`.
type waprProcess struct {
	cmd  *exec.Cmd
	base string
	out  *lockedWriter // its stdout and stderr
}

// startWapr runs wapr for appID in front of the app on appPort and waits
// until it is healthy. config is a Configuration file, "" for none.
func startWapr(t *testing.T, appID string, appPort, internalPort int, config string) *waprProcess {
	t.Helper()
	httpPort := freePort(t)
	p := &waprProcess{base: fmt.Sprintf("http://127.0.0.1:%d", httpPort), out: &lockedWriter{}}
	args := []string{"run", "--app-id", appID, "--app-port", strconv.Itoa(appPort),
		"--dapr-http-port", strconv.Itoa(httpPort), "--dapr-internal-grpc-port", strconv.Itoa(internalPort),
		"--dapr-grpc-port", "0", "--metrics-port", "0", "--wasm-cache-dir", "-", "--hot-reload=false"}
	if config != "" {
		args = append(args, "--config", config)
	}
	p.cmd = exec.Command(waprBinary(t), args...)
	p.cmd.Dir = t.TempDir() // no ./components: the embedded defaults
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("wapr %s said:\n%s", appID, p.out)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(p.base + "/v1.0/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 204 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("wapr %s not healthy after 20 s:\n%s", appID, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedWriter collects a process's output, written from two copying
// goroutines (stdout and stderr) and read by the test.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(b)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// invoke calls method on appID through the sidecar at base.
func invoke(t *testing.T, base, appID, method string) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	res, err := http.Post(base+"/v1.0/invoke/"+appID+"/method/"+method, "text/plain", strings.NewReader("ping"))
	if err != nil {
		t.Fatalf("invoking %s: %v", appID, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), time.Since(start)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	doc := "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: mesh\nspec:\n  nameResolution:\n" + body
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInvokeFailover: two instances of an app behind their own wapr
// processes share its calls; kill -9 one and the call it was given fails
// within its timeout at worst, and the other instance takes every call
// after.
func TestInvokeFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wapr processes")
	}
	pA, pB1, pB2 := freePort(t), freePort(t), freePort(t)
	cfg := writeConfig(t, fmt.Sprintf("    component: static\n    configuration:\n      apps:\n        front: [\"127.0.0.1:%d\"]\n        back: [\"127.0.0.1:%d\", \"127.0.0.1:%d\"]\n", pA, pB1, pB2))
	front := startWapr(t, "front", nameApp(t, "front"), pA, cfg)
	startWapr(t, "back", nameApp(t, "back-1"), pB1, cfg)
	b2 := startWapr(t, "back", nameApp(t, "back-2"), pB2, cfg)

	seen := map[string]int{}
	for range 6 {
		status, body, _ := invoke(t, front.base, "back", "work?n=1")
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		name, _, _ := strings.Cut(body, " ")
		seen[name]++
		if want := "POST /work?n=1"; !strings.HasSuffix(body, want) {
			t.Errorf("app saw %q, want %q", body, want)
		}
	}
	if seen["back-1"] != 3 || seen["back-2"] != 3 {
		t.Fatalf("calls per instance %v, want 3 each", seen)
	}
	// Callers reach the back end the other way too.
	if status, body, _ := invoke(t, b2.base, "front", "hello"); status != 200 || !strings.HasPrefix(body, "front ") {
		t.Fatalf("back-2 → front: %d %s", status, body)
	}

	if err := b2.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b2.cmd.Wait()
	failed := 0
	for i := range 10 {
		status, body, took := invoke(t, front.base, "back", "work")
		if took > 5*time.Second {
			t.Errorf("call %d took %v", i, took)
		}
		switch {
		case status == 200 && strings.HasPrefix(body, "back-1 "):
		case status == 500 && strings.Contains(body, "ERR_DIRECT_INVOKE") && strings.Contains(body, "back"):
			failed++
		default:
			t.Errorf("call %d after the kill: %d %s", i, status, body)
		}
	}
	if failed > 1 {
		t.Errorf("%d calls failed after the kill, want at most the one in flight", failed)
	}
}

// TestInvokeMDNS: three wapr processes on one machine find each other by
// mDNS, the self-hosted default, with no Configuration at all; the test
// runs in a network namespace of its own (mdnstest.Isolate), so no
// multicast leaves it and nothing outside answers.
func TestInvokeMDNS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wapr processes")
	}
	if !mdnstest.Isolate(t) {
		return
	}
	front := startWapr(t, "front", nameApp(t, "front"), freePort(t), "")
	startWapr(t, "back", nameApp(t, "back-1"), freePort(t), "")
	b2 := startWapr(t, "back", nameApp(t, "back-2"), freePort(t), "")

	seen := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < 2 {
		status, body, _ := invoke(t, front.base, "back", "work")
		if status != 200 {
			t.Fatalf("front → back: %d %s", status, body)
		}
		name, _, _ := strings.Cut(body, " ")
		seen[name]++
		if time.Now().After(deadline) {
			t.Fatalf("only %v answered in 10 s; want both instances of back", seen)
		}
	}
	if status, body, _ := invoke(t, b2.base, "front", "hi"); status != 200 || !strings.HasPrefix(body, "front ") {
		t.Fatalf("back → front: %d %s", status, body)
	}
	status, body, took := invoke(t, front.base, "nobody", "x")
	if status != 500 || !strings.Contains(body, "ERR_DIRECT_INVOKE") || !strings.Contains(body, "nobody") {
		t.Errorf("unknown app: %d %s", status, body)
	}
	if took > 5*time.Second {
		t.Errorf("the unknown app took %v to fail", took)
	}
}
