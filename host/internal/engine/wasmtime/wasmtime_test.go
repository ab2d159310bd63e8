//go:build wasmtime

package wasmtime_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	wt "github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/internal/engine"
	"github.com/wapr-dev/wapr/host/internal/engine/enginetest"
	"github.com/wapr-dev/wapr/host/internal/engine/wasmtime"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

const misbehavePkg = enginetest.MisbehavePkg

func testCacheDir() string { return filepath.Join(os.TempDir(), "wapr-test-wasmtime-cache") }

func newEngine(t testing.TB, cfg engine.Config) engine.Engine {
	t.Helper()
	f, err := wasmtime.NewFactory(testCacheDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eng, err := f.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Close(ctx); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	return eng
}

func newInstance(b testing.TB, interruptible bool) engine.Instance {
	eng := newEngine(b, engine.Config{Interruptible: interruptible, HostModules: enginetest.HostStubs()})
	ctx := context.Background()
	m, err := eng.Compile(ctx, wasmtest.Bytes(b, misbehavePkg))
	if err != nil {
		b.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, nil, engine.InstanceConfig{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := inst.Func("_initialize").Call(ctx); err != nil {
		b.Fatal(err)
	}
	return inst
}

// watInstance compiles and instantiates a module written in the text format.
func watInstance(t *testing.T, cfg engine.Config, wat string, data any, icfg engine.InstanceConfig) engine.Instance {
	t.Helper()
	wasm, err := wt.Wat2Wasm(wat)
	if err != nil {
		t.Fatal(err)
	}
	eng := newEngine(t, cfg)
	ctx := context.Background()
	m, err := eng.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, data, icfg)
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestGoGuest(t *testing.T) {
	for _, intr := range []bool{false, true} {
		t.Run(map[bool]string{false: "trusted", true: "interruptible"}[intr], func(t *testing.T) {
			eng := newEngine(t, engine.Config{Interruptible: intr, MemoryLimitPages: 1024, HostModules: enginetest.HostStubs()})
			ctx := context.Background()
			m, err := eng.Compile(ctx, wasmtest.Bytes(t, misbehavePkg))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{abi.ExportMarker, abi.ExportInfo, abi.ExportState, "memory", "bench_alloc"} {
				if !slices.Contains(m.Exports(), want) {
					t.Errorf("exports %v lack %s", m.Exports(), want)
				}
			}
			if !slices.Contains(m.Imports(), engine.Import{Module: abi.ModuleHost, Name: abi.FuncInputRead}) ||
				!slices.Contains(m.Imports(), engine.Import{Module: abi.ModuleWASI, Name: "fd_write"}) {
				t.Errorf("imports %v", m.Imports())
			}
			inst, err := m.Instantiate(ctx, nil, engine.InstanceConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			if _, err := inst.Func("_initialize").Call(ctx); err != nil {
				t.Fatal(err)
			}
			if f := inst.Func("no_such_export"); f != nil {
				t.Fatalf("Func of a missing export: %#v, want nil", f)
			}
			n, err := inst.Func("bench_alloc").Call(ctx, 0xdead_beef_0000_0400) // upper bits are dropped
			if err != nil || n != 1024 {
				t.Fatalf("bench_alloc: %d, %v", n, err)
			}
			if _, err := inst.Func("bench_alloc").Call(ctx); err == nil {
				t.Fatal("a call with too few arguments succeeded")
			}
			if s := inst.Memory().Size(); s < 1<<20 || s%65536 != 0 {
				t.Fatalf("memory size %d", s)
			}
			if err := inst.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := inst.Close(ctx); err != nil {
				t.Fatalf("second close: %v", err)
			}
		})
	}
}

const loopWAT = `(module
  (memory (export "memory") 1)
  (func (export "loop") (result i64) (loop $l (br $l)) (i64.const 0)))`

// TestInterrupt: a guest spinning forever is stopped when its context's
// deadline passes or the context is cancelled, within about one epoch tick.
func TestInterrupt(t *testing.T) {
	inst := watInstance(t, engine.Config{Interruptible: true}, loopWAT, nil, engine.InstanceConfig{})
	loop := inst.Func("loop")
	const deadline = 100 * time.Millisecond

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		_, err := loop.Call(ctx)
		d := time.Since(start)
		if !errors.Is(err, engine.ErrInterrupted) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("loop: %v, want ErrInterrupted and DeadlineExceeded", err)
		}
		t.Logf("stopped %s after the %s deadline", d-deadline, deadline)
		if d > deadline+50*time.Millisecond {
			t.Fatalf("stopped after %s, deadline %s", d, deadline)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(deadline, cancel)
		start := time.Now()
		_, err := loop.Call(ctx)
		d := time.Since(start)
		if !errors.Is(err, engine.ErrInterrupted) || !errors.Is(err, context.Canceled) {
			t.Fatalf("loop: %v, want ErrInterrupted and Canceled", err)
		}
		t.Logf("stopped %s after the cancellation", d-deadline)
		if d > deadline+50*time.Millisecond {
			t.Fatalf("stopped after %s, cancelled at %s", d, deadline)
		}
	})
	t.Run("done before the call", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := loop.Call(ctx); !errors.Is(err, engine.ErrInterrupted) {
			t.Fatalf("loop: %v", err)
		}
	})
}

// TestEngineCloseStopsCalls: closing an engine stops a call that would
// otherwise run forever, and frees the instance.
func TestEngineCloseStopsCalls(t *testing.T) {
	f, err := wasmtime.NewFactory("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eng, err := f.New(ctx, engine.Config{Interruptible: true})
	if err != nil {
		t.Fatal(err)
	}
	wasm, _ := wt.Wat2Wasm(loopWAT)
	m, err := eng.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, nil, engine.InstanceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := inst.Func("loop").Call(ctx)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := eng.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, engine.ErrInterrupted) {
		t.Fatalf("loop after engine close: %v", err)
	}
	if _, err := m.Instantiate(ctx, nil, engine.InstanceConfig{}); err == nil {
		t.Fatal("instantiated on a closed engine")
	}
}

func TestTrap(t *testing.T) {
	inst := watInstance(t, engine.Config{Interruptible: true}, `(module
  (func (export "trap") (result i64) unreachable)
  (func (export "div") (param i32) (result i64) (i64.extend_i32_s (i32.div_s (i32.const 1) (local.get 0)))))`,
		nil, engine.InstanceConfig{})
	ctx := context.Background()
	_, err := inst.Func("trap").Call(ctx)
	if err == nil || errors.Is(err, engine.ErrInterrupted) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("trap: %v", err)
	}
	if _, err := inst.Func("div").Call(ctx, 0); err == nil || !strings.Contains(err.Error(), "divide by zero") {
		t.Fatalf("div by 0: %v", err)
	}
	if r, err := inst.Func("div").Call(ctx, 1); err != nil || r != 1 {
		t.Fatalf("div by 1 after traps: %d, %v", r, err)
	}
}

// TestMemoryLimit: growing memory past MemoryLimitPages fails.
func TestMemoryLimit(t *testing.T) {
	inst := watInstance(t, engine.Config{MemoryLimitPages: 4}, `(module
  (memory (export "memory") 1)
  (func (export "grow") (param i32) (result i64)
    (if (i32.eq (memory.grow (local.get 0)) (i32.const -1)) (then unreachable))
    (i64.extend_i32_u (memory.size))))`, nil, engine.InstanceConfig{})
	ctx := context.Background()
	grow := inst.Func("grow")
	if n, err := grow.Call(ctx, 3); err != nil || n != 4 {
		t.Fatalf("grow to the limit: %d, %v", n, err)
	}
	if _, err := grow.Call(ctx, 1); err == nil {
		t.Fatal("grew past the limit")
	}
	if s := inst.Memory().Size(); s != 4*65536 {
		t.Fatalf("memory size %d", s)
	}

	// A module whose minimum memory is over the limit does not instantiate.
	wasm, _ := wt.Wat2Wasm(`(module (memory (export "memory") 8))`)
	eng := newEngine(t, engine.Config{MemoryLimitPages: 4})
	m, err := eng.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Instantiate(ctx, nil, engine.InstanceConfig{}); err == nil {
		t.Fatal("instantiated a module over the memory limit")
	}
}

// TestGoGuestOOM: a Go guest allocating past the limit fails its call.
func TestGoGuestOOM(t *testing.T) {
	var in []byte
	var stderr bytes.Buffer
	i32 := engine.I32
	hosts := []engine.HostModule{
		{Name: abi.ModuleHost, Funcs: []engine.HostFunc{
			{Name: abi.FuncInputRead, Params: []engine.ValueType{i32, i32}, Results: []engine.ValueType{i32}, Fn: func(_ context.Context, c engine.Caller, stack []uint64) {
				n := min(int(uint32(stack[1])), len(in))
				c.Memory().Write(uint32(stack[0]), in[:n])
				in = in[n:]
				stack[0] = uint64(n)
			}},
			{Name: abi.FuncOutputWrite, Params: []engine.ValueType{i32, i32}, Results: []engine.ValueType{i32}, Fn: func(_ context.Context, _ engine.Caller, stack []uint64) { stack[0] = 0 }},
		}},
		enginetest.HostStubs()[1],
	}
	eng := newEngine(t, engine.Config{Interruptible: true, MemoryLimitPages: 1024, HostModules: hosts})
	ctx := context.Background()
	m, err := eng.Compile(ctx, wasmtest.Bytes(t, misbehavePkg))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, nil, engine.InstanceConfig{Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inst.Func("_initialize").Call(ctx); err != nil {
		t.Fatal(err)
	}
	var e abi.Encoder
	(&abi.StateGetRequest{Key: "oom"}).Encode(&e)
	in = e.Bytes()
	_, err = inst.Func(abi.ExportState).Call(ctx, uint64(abi.StateGet), uint64(len(in)))
	if err == nil {
		t.Fatal("the guest allocated past the limit")
	}
	t.Logf("oom: %v\nstderr: %.200q", err, stderr.String())
	if errors.Is(err, engine.ErrInterrupted) || !strings.HasPrefix(err.Error(), "wasm trap: ") || !strings.Contains(stderr.String(), "out of memory") {
		t.Fatalf("oom: %v", err)
	}
}

type ctxKey struct{}

// TestHostFunc: a host function gets the export call's context, the
// instance's data, clean i32 parameters and the caller's memory.
func TestHostFunc(t *testing.T) {
	type data struct{ calls int }
	d := &data{}
	var sawCtx any
	var sawStack []uint64
	probe := func(ctx context.Context, c engine.Caller, stack []uint64) {
		sawCtx = ctx.Value(ctxKey{})
		sawStack = append([]uint64(nil), stack[:2]...)
		c.Data().(*data).calls++
		if !c.Memory().Write(16, []byte("hi")) {
			t.Error("host write failed")
		}
		if _, ok := c.Memory().Read(65535, 2); ok {
			t.Error("an out-of-range read succeeded")
		}
		stack[0] = 7
	}
	boom := func(context.Context, engine.Caller, []uint64) { panic("boom") }
	hosts := []engine.HostModule{{Name: "env", Funcs: []engine.HostFunc{
		{Name: "probe", Params: []engine.ValueType{engine.I32, engine.I64}, Results: []engine.ValueType{engine.I32}, Fn: probe},
		{Name: "boom", Fn: boom},
	}}}
	for _, intr := range []bool{false, true} {
		t.Run(map[bool]string{false: "trusted", true: "interruptible"}[intr], func(t *testing.T) {
			inst := watInstance(t, engine.Config{Interruptible: intr, HostModules: hosts}, `(module
  (import "env" "probe" (func $probe (param i32 i64) (result i32)))
  (import "env" "boom" (func $boom))
  (memory (export "memory") 1)
  (func (export "call") (param i32) (result i64)
    (i64.extend_i32_u (call $probe (local.get 0) (i64.const -2))))
  (func (export "boom") (result i64) (call $boom) (i64.const 0)))`, d, engine.InstanceConfig{})
			ctx := context.WithValue(context.Background(), ctxKey{}, "the call's")
			r, err := inst.Func("call").Call(ctx, 0xffff_ffff)
			if err != nil || r != 7 {
				t.Fatalf("call: %d, %v", r, err)
			}
			if sawCtx != "the call's" {
				t.Errorf("host saw ctx value %v", sawCtx)
			}
			if sawStack[0] != 0xffff_ffff || sawStack[1] != 0xffff_ffff_ffff_fffe {
				t.Errorf("host saw params %#x", sawStack)
			}
			if b, ok := inst.Memory().Read(16, 2); !ok || string(b) != "hi" {
				t.Errorf("memory after the call: %q", b)
			}
			_, err = inst.Func("boom").Call(ctx)
			if err == nil || !strings.Contains(err.Error(), "panicked: boom") {
				t.Fatalf("a panicking host function: %v", err)
			}
		})
	}
	if d.calls != 2 {
		t.Errorf("data saw %d calls", d.calls)
	}
}

// TestWASI: fd_write reaches the instance's writers; proc_exit ends the
// instance.
func TestWASI(t *testing.T) {
	var stdout, stderr bytes.Buffer
	inst := watInstance(t, engine.Config{Interruptible: true}, `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 8) "hello\n")
  (func (export "write") (param i32) (result i64)
    (i32.store (i32.const 0) (i32.const 8))
    (i32.store (i32.const 4) (i32.const 6))
    (i64.extend_i32_u (call $w (local.get 0) (i32.const 0) (i32.const 1) (i32.const 32))))
  (func (export "now") (result i64)
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 40)))
    (i64.load (i32.const 40)))
  (func (export "exit") (result i64) (call $exit (i32.const 3)) (i64.const 0)))`, nil,
		engine.InstanceConfig{Stdout: &stdout, Stderr: &stderr})
	ctx := context.Background()
	write := inst.Func("write")
	for fd, want := range map[uint64]uint64{1: 0, 2: 0, 5: 8} {
		if r, err := write.Call(ctx, fd); err != nil || r != want {
			t.Fatalf("fd_write(%d): %d, %v; want errno %d", fd, r, err, want)
		}
	}
	if stdout.String() != "hello\n" || stderr.String() != "hello\n" {
		t.Fatalf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if n, _ := inst.Memory().Read(32, 1); n[0] != 6 {
		t.Fatalf("nwritten %d", n[0])
	}
	now, err := inst.Func("now").Call(ctx)
	if err != nil || time.Since(time.Unix(0, int64(now))).Abs() > time.Minute {
		t.Fatalf("clock_time_get: %d, %v", now, err)
	}
	_, err = inst.Func("exit").Call(ctx)
	if err == nil || !strings.Contains(err.Error(), "exited with status 3") || errors.Is(err, engine.ErrInterrupted) {
		t.Fatalf("proc_exit: %v", err)
	}
	if _, err := write.Call(ctx, 1); err == nil {
		t.Fatal("an exited instance took another call")
	}
}

// TestCache: the second compile of a module loads the artifact the first
// stored; a corrupt artifact is recompiled and replaced.
func TestCache(t *testing.T) {
	wasm := wasmtest.Bytes(t, misbehavePkg)
	ctx := context.Background()
	dir := t.TempDir()
	compile := func() time.Duration {
		f, err := wasmtime.NewFactory(dir)
		if err != nil {
			t.Fatal(err)
		}
		eng, err := f.New(ctx, engine.Config{Interruptible: true, HostModules: enginetest.HostStubs()})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close(ctx)
		start := time.Now()
		m, err := eng.Compile(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		inst, err := m.Instantiate(ctx, nil, engine.InstanceConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inst.Func("_initialize").Call(ctx); err != nil {
			t.Fatal(err)
		}
		return d
	}
	cold := compile()
	files, _ := filepath.Glob(filepath.Join(dir, "*.cwasm"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	st, _ := os.Stat(files[0])
	cached := compile()
	t.Logf("%d-byte module: cold compile %s, cached %s (%d-byte artifact)", len(wasm), cold, cached, st.Size())
	if cached*3 > cold {
		t.Errorf("cached compile %s is not much faster than cold %s", cached, cold)
	}

	// Corrupt the artifact: the next compile recompiles and rewrites it.
	b, _ := os.ReadFile(files[0])
	b[len(b)/2] ^= 0xff
	os.WriteFile(files[0], b, 0o600)
	recompiled := compile()
	again := compile()
	t.Logf("after corruption: %s, then %s", recompiled, again)
	if again*3 > recompiled {
		t.Errorf("the rewritten artifact was not used: %s then %s", recompiled, again)
	}
	if files2, _ := filepath.Glob(filepath.Join(dir, "*")); len(files2) != 1 {
		t.Fatalf("cache files %v", files2)
	}
}

// TestShimMatchesHeaders compiles shim.h against wasmtime-go's own
// headers: a hand-written declaration that drifts from them fails here.
func TestShimMatchesHeaders(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc")
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/bytecodealliance/wasmtime-go/v39").Output()
	if err != nil {
		t.Skipf("locating wasmtime-go: %v", err)
	}
	include := filepath.Join(strings.TrimSpace(string(out)), "build", "include")
	src := filepath.Join(t.TempDir(), "check.c")
	os.WriteFile(src, []byte(`#include <stddef.h>
#include <wasmtime.h>
#define WAPR_SHIM_CHECK
#include "shim.h"
#define LAYOUT(T) (sizeof(T) == 2 * sizeof(void *) && offsetof(T, size) == 0 && offsetof(T, data) == sizeof(void *))
_Static_assert(LAYOUT(wasm_byte_vec_t) && LAYOUT(wasm_valtype_vec_t), "vector layout");
_Static_assert(sizeof(wasmtime_val_raw_t) == 16, "raw value size");
_Static_assert(sizeof(wasmtime_func_t) == 16 && sizeof(wasmtime_memory_t) == 24, "extern sizes (layout.go)");
_Static_assert(WAPR_TRAP_CODE_INTERRUPT == WASMTIME_TRAP_CODE_INTERRUPT, "interrupt trap code");
_Static_assert(WASMTIME_UPDATE_DEADLINE_CONTINUE == 0 && WASM_I32 == 0 && WASM_I64 == 1, "constants in shim.c");
`), 0o600)
	wd, _ := os.Getwd()
	cmd := exec.Command(cc, "-fsyntax-only", "-std=c11", "-Wall", "-Werror", "-I", include, "-I", wd, src)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("shim.h does not match wasmtime.h: %v\n%s", err, b)
	}
}

// BenchmarkExportCall is the bare cost of calling a Go guest's export.
func BenchmarkExportCall(b *testing.B) {
	for _, intr := range []bool{false, true} {
		b.Run(map[bool]string{false: "trusted", true: "interruptible"}[intr], func(b *testing.B) {
			inst := newInstance(b, intr)
			noop := inst.Func("bench_noop")
			alloc := inst.Func("bench_alloc")
			ctx := context.Background()
			b.Run("noop", func(b *testing.B) {
				for b.Loop() {
					if _, err := noop.Call(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("alloc1KiB", func(b *testing.B) {
				for b.Loop() {
					if _, err := alloc.Call(ctx, 1024); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
