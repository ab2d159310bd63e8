package wasmcomp_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/engine"
	"github.com/wapr-dev/wapr/host/internal/engine/wazero"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

const misbehavePkg = "./host/internal/wasmcomp/testdata/guests/misbehave"

// testEngine is an engine the tests and benchmarks run on, each as a
// subtest named after it: wazero always, wasmtime in builds with -tags
// wasmtime (engines_wasmtime_test.go adds it).
type testEngine struct {
	name string
	// factory caches compiled modules in a folder shared by test runs
	// (compiling a Go guest cold takes seconds).
	factory func(t testing.TB) engine.Factory
}

var testEngines = []testEngine{{name: "wazero", factory: func(t testing.TB) engine.Factory {
	f, err := wazero.NewFactory(filepath.Join(os.TempDir(), "wapr-test-wazero-cache"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}}}

// perEngine runs test once per engine, as subtests.
func perEngine(t *testing.T, test func(t *testing.T, e testEngine)) {
	for _, e := range testEngines {
		t.Run(e.name, func(t *testing.T) { test(t, e) })
	}
}

// newLoader returns a loader on engine e.
func newLoader(t testing.TB, e testEngine) *wasmcomp.Loader {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return wasmcomp.NewLoader(e.factory(t), log)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func inspect(t testing.TB, l *wasmcomp.Loader, pkg string) *wasmcomp.Module {
	t.Helper()
	m, err := l.InspectFile(context.Background(), wasmtest.Build(t, pkg))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// startMisbehave starts the misbehaving store with a small pool.
func startMisbehave(t *testing.T, e testEngine, ann, md map[string]string) *wasmcomp.StateStore {
	t.Helper()
	l := newLoader(t, e)
	m := inspect(t, l, misbehavePkg)
	base := map[string]string{wasmcomp.AnnotationPoolSize: "2", wasmcomp.AnnotationCallTimeout: "1s", wasmcomp.AnnotationMemoryLimit: "64Mi"}
	for k, v := range ann {
		base[k] = v
	}
	s, err := l.NewStateStore(m, "mis", "state.misbehave", base)
	if err != nil {
		t.Fatal(err)
	}
	props := map[string]string{"target": "127.0.0.1:1"}
	for k, v := range md {
		props[k] = v
	}
	if err := s.Init(context.Background(), component.Metadata{Name: "mis", Type: "state.misbehave", Properties: props}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestInspect(t *testing.T) { perEngine(t, testInspect) }

func testInspect(t *testing.T, e testEngine) {
	l := newLoader(t, e)
	m := inspect(t, l, misbehavePkg)
	if !m.Provides("state.misbehave") || m.Descriptor.Name != "misbehave" || !strings.HasPrefix(m.Digest, "sha256:") || m.ABIVersion() != "v1.0" {
		t.Fatalf("module %+v", m)
	}
	want := []string{abi.ModuleHost, abi.ModuleSock, abi.ModuleWASI}
	if strings.Join(m.ImportModules, ",") != strings.Join(want, ",") {
		t.Fatalf("imports %v, want %v", m.ImportModules, want)
	}
	if _, err := l.Inspect(context.Background(), []byte("\x00asm\x01\x00\x00\x00")); err == nil || !strings.Contains(err.Error(), "marker") {
		t.Fatalf("an empty module: %v", err)
	}
	if _, err := l.Inspect(context.Background(), []byte("not wasm")); err == nil {
		t.Fatal("garbage inspected without error")
	}
}

// TestSandbox: each misbehaviour fails that one request with a clear error;
// the store keeps serving and replaces the instance.
func TestSandbox(t *testing.T) { perEngine(t, testSandbox) }

func testSandbox(t *testing.T, e testEngine) {
	s := startMisbehave(t, e, nil, nil)
	ctx := context.Background()
	if err := s.Set(ctx, &state.SetRequest{Key: "good", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key  string
		want string
	}{
		{"loop", "did not finish within 1s"},
		{"trap", "failed"},
		// Allocating 64 MiB in slow (interruptible, race-instrumented)
		// guest code may hit the 1 s deadline first: either way the
		// instance is discarded.
		{"oom", "failed|did not finish"},
		{"garbage", "undecodable"},
		{"badlen", "protocol violation"},
		{"huge", "exceeds"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			start := time.Now()
			_, err := s.Get(ctx, &state.GetRequest{Key: c.key})
			if err == nil || !regexp.MustCompile(c.want).MatchString(err.Error()) {
				t.Fatalf("get %s: %v, want an error containing %q", c.key, err, c.want)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Fatalf("get %s took %s", c.key, d)
			}
			// The store still serves: a fresh instance replaced the broken one.
			res, err := s.Get(ctx, &state.GetRequest{Key: "good"})
			if err != nil && !errors.Is(err, component.ErrNotFound) {
				t.Fatalf("after %s: %v", c.key, err)
			}
			_ = res
		})
	}
}

// TestAllowList: dialing a destination outside the allow-list is refused by
// the host; the allowed one connects.
func TestAllowList(t *testing.T) { perEngine(t, testAllowList) }

func testAllowList(t *testing.T, e testEngine) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	s := startMisbehave(t, e, nil, map[string]string{"target": ln.Addr().String()})
	ctx := context.Background()
	dial := func(addr string) int {
		res, err := s.Get(ctx, &state.GetRequest{Key: "dial:" + addr})
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		n, _ := strconv.Atoi(string(res.Data))
		return n
	}
	if h := dial(ln.Addr().String()); h <= 0 {
		t.Errorf("dialing the allowed %s: code %d", ln.Addr(), h)
	}
	if h := dial(other.Addr().String()); h != int(abi.ErrDenied) {
		t.Errorf("dialing %s (not allowed): code %d, want ErrDenied", other.Addr(), h)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if h := dial("localhost:" + port); h <= 0 {
		t.Errorf("dialing the allowed address by name: code %d", h)
	}
}

// TestGrantRefused: a module importing sockets is refused when the
// component grants no destination, with an error naming the import.
func TestGrantRefused(t *testing.T) { perEngine(t, testGrantRefused) }

func testGrantRefused(t *testing.T, e testEngine) {
	l := newLoader(t, e)
	m := inspect(t, l, misbehavePkg)
	s, err := l.NewStateStore(m, "mis", "state.misbehave", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Init(context.Background(), component.Metadata{Properties: map[string]string{}})
	if err == nil || !strings.Contains(err.Error(), abi.ModuleSock) {
		t.Fatalf("init without a destination: %v, want a refusal naming %s", err, abi.ModuleSock)
	}
	s.Close(context.Background())
}

func TestInitFailure(t *testing.T) { perEngine(t, testInitFailure) }

func testInitFailure(t *testing.T, e testEngine) {
	l := newLoader(t, e)
	m := inspect(t, l, misbehavePkg)
	s, _ := l.NewStateStore(m, "mis", "state.misbehave", nil)
	err := s.Init(context.Background(), component.Metadata{Properties: map[string]string{"target": "127.0.0.1:1", "failInit": "true"}})
	if err == nil || !strings.Contains(err.Error(), "told to fail") {
		t.Fatalf("init: %v", err)
	}
	s.Close(context.Background())
}

// TestConcurrentCalls: many goroutines share a small pool; every answer is
// the right one (no instance serves two calls at once).
func TestConcurrentCalls(t *testing.T) { perEngine(t, testConcurrentCalls) }

func testConcurrentCalls(t *testing.T, e testEngine) {
	s := startMisbehave(t, e, map[string]string{wasmcomp.AnnotationPoolSize: "4"}, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 32; g++ {
		wg.Go(func() {
			for k := 0; k < 50; k++ {
				key := "k" + strconv.Itoa(g) + "-" + strconv.Itoa(k)
				res, err := s.Get(ctx, &state.GetRequest{Key: "echo:" + key})
				if err != nil {
					errs <- err
					return
				}
				if string(res.Data) != key {
					errs <- errors.New("got " + string(res.Data) + " for " + key)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
