package meter_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wapr-dev/wapr/host/internal/engine/meter"
)

// The test module, assembled by hand so every construct the rewrite
// renumbers is present: an imported function and global, a start function,
// direct and indirect calls, ref.func, an element segment, a mutable
// global, exports and a name section.
//
//	(import "env" "add1" (func $add1 (param i32) (result i32)))   ;; 0
//	(import "env" "base" (global $base i32))                       ;; global 0
//	(global $g (mut i32) (i32.const 7))                            ;; global 1
//	(table 1 funcref) (elem (i32.const 0) $double)
//	(func $count (export "count") (param i32) (result i32)         ;; 1
//	  (local i32)  loop: local1 = add1(local1); if (local1 < param) br loop; local1)
//	(func $double (param i32) (result i32) local0 * 2)             ;; 2
//	(func $direct (export "direct") (param i32) (result i32) call $double)     ;; 3
//	(func $indirect (export "indirect") (param i32) (result i32) call_indirect 0) ;; 4
//	(func $spin (export "spin") (result i32) loop br 0 end unreachable)         ;; 5
//	(func $getg (export "getg") (result i32) global $g + global $base)          ;; 6
//	(func $init (i32.const 42 global.set $g))                                   ;; 7 (start)
//	(func $isnull (export "isnull") (result i32) ref.func $double ref.is_null)  ;; 8
func testModule() []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	sec := func(id byte, body ...byte) {
		m = append(m, id)
		m = leb(m, uint32(len(body)))
		m = append(m, body...)
	}
	// types: 0 (i32)->i32, 1 ()->i32, 2 ()->()
	sec(1, 3, 0x60, 1, 0x7f, 1, 0x7f, 0x60, 0, 1, 0x7f, 0x60, 0, 0)
	imp := []byte{2}
	imp = append(imp, name("env")...)
	imp = append(imp, name("add1")...)
	imp = append(imp, 0x00, 0)
	imp = append(imp, name("env")...)
	imp = append(imp, name("base")...)
	imp = append(imp, 0x03, 0x7f, 0x00)
	sec(2, imp...)
	sec(3, 8, 0, 0, 0, 0, 1, 1, 2, 1) // count double direct indirect spin getg init isnull
	sec(4, 1, 0x70, 0x00, 1)
	sec(6, 1, 0x7f, 0x01, 0x41, 7, 0x0b)
	exp := []byte{6}
	for _, e := range []struct {
		n  string
		fn byte
	}{{"count", 1}, {"direct", 3}, {"indirect", 4}, {"spin", 5}, {"getg", 6}, {"isnull", 8}} {
		exp = append(exp, name(e.n)...)
		exp = append(exp, 0x00, e.fn)
	}
	sec(7, exp...)
	sec(8, 7)                            // start: $init
	sec(9, 1, 0x00, 0x41, 0, 0x0b, 1, 2) // elem: table 0 at 0: $double
	bodies := [][]byte{
		// count
		{1, 1, 0x7f, 0x03, 0x40, 0x20, 1, 0x10, 0, 0x22, 1, 0x20, 0, 0x48, 0x0d, 0, 0x0b, 0x20, 1, 0x0b},
		// double
		{0, 0x20, 0, 0x41, 2, 0x6c, 0x0b},
		// direct
		{0, 0x20, 0, 0x10, 2, 0x0b},
		// indirect
		{0, 0x20, 0, 0x41, 0, 0x11, 0, 0, 0x0b},
		// spin
		{0, 0x03, 0x40, 0x0c, 0, 0x0b, 0x00, 0x0b},
		// getg
		{0, 0x23, 1, 0x23, 0, 0x6a, 0x0b},
		// init
		{0, 0x41, 42, 0x24, 1, 0x0b},
		// isnull
		{0, 0xd2, 2, 0xd1, 0x0b},
	}
	code := []byte{byte(len(bodies))}
	for _, b := range bodies {
		code = leb(code, uint32(len(b)))
		code = append(code, b...)
	}
	sec(10, code...)
	// name section: function names for $double (2) and $direct (3)
	fnames := []byte{2, 2}
	fnames = append(fnames, name("double")...)
	fnames = append(fnames, 3)
	fnames = append(fnames, name("direct")...)
	names := name("name")
	names = append(names, 1)
	names = leb(names, uint32(len(fnames)))
	names = append(names, fnames...)
	sec(0, names...)
	sec(0, append(name(".debug_info"), 1, 2, 3)...)
	return m
}

// envModule exports add1 (x+1) and an immutable i32 global base = 0.
func envModule() []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	sec := func(id byte, body ...byte) {
		m = append(m, id)
		m = leb(m, uint32(len(body)))
		m = append(m, body...)
	}
	sec(1, 1, 0x60, 1, 0x7f, 1, 0x7f)
	sec(3, 1, 0)
	sec(6, 1, 0x7f, 0x00, 0x41, 0, 0x0b)
	exp := []byte{2}
	exp = append(exp, name("add1")...)
	exp = append(exp, 0x00, 0)
	exp = append(exp, name("base")...)
	exp = append(exp, 0x03, 0)
	sec(7, exp...)
	sec(10, 1, 7, 0, 0x20, 0, 0x41, 1, 0x6a, 0x0b)
	return m
}

func leb(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func name(s string) []byte { return append(leb(nil, uint32(len(s))), s...) }

// harness runs modules in a wazero runtime without wazero's interruption,
// with env and a refuel function that counts its calls.
type harness struct {
	rt      wazero.Runtime
	refuels atomic.Int64
	// budget, when > 0, is how many refuels are granted before refuel
	// stops the guest.
	budget int64
	fuel   int32
}

func newHarness(t testing.TB, fuel int32, budget int64) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{rt: wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler()), fuel: fuel, budget: budget}
	t.Cleanup(func() { h.rt.Close(ctx) })
	// env is a Wasm module: host modules cannot export globals.
	if _, err := h.rt.InstantiateWithConfig(ctx, envModule(), wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatal(err)
	}
	_, err := h.rt.NewHostModuleBuilder(meter.Module).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			n := h.refuels.Add(1)
			if h.budget > 0 && n > h.budget {
				_ = m.CloseWithExitCode(ctx, sys.ExitCodeDeadlineExceeded)
				panic(sys.NewExitError(sys.ExitCodeDeadlineExceeded))
			}
			stack[0] = uint64(h.fuel)
		}), nil, []api.ValueType{api.ValueTypeI32}).
		Export(meter.Func).
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) instantiate(t testing.TB, wasm []byte, name string) api.Module {
	t.Helper()
	ctx := context.Background()
	cm, err := h.rt.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	mod, err := h.rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(name))
	if err != nil {
		t.Fatalf("instantiate %s: %v", name, err)
	}
	return mod
}

func call(t *testing.T, m api.Module, fn string, args ...uint64) uint64 {
	t.Helper()
	res, err := m.ExportedFunction(fn).Call(context.Background(), args...)
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	return res[0]
}

func TestMeteredModuleBehavesTheSame(t *testing.T) {
	orig := testModule()
	metered, err := meter.Instrument(orig, 10)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, 10, 0)
	a := h.instantiate(t, orig, "orig")
	b := h.instantiate(t, metered, "metered")
	if h.refuels.Load() != 0 {
		t.Fatalf("refuel called %d times while instantiating", h.refuels.Load())
	}
	for _, c := range []struct {
		fn   string
		args []uint64
		want uint64
	}{
		{"count", []uint64{1000}, 1000},
		{"direct", []uint64{21}, 42},
		{"indirect", []uint64{5}, 10},
		{"getg", nil, 42}, // the start function ran
		{"isnull", nil, 0},
	} {
		if got := call(t, a, c.fn, c.args...); got != c.want {
			t.Fatalf("original %s = %d, want %d", c.fn, got, c.want)
		}
		if got := call(t, b, c.fn, c.args...); got != c.want {
			t.Fatalf("metered %s = %d, want %d", c.fn, got, c.want)
		}
	}
	// count(1000) enters one function and iterates 1000 times: about 100
	// refuels at 10 units each; the other calls add a handful.
	if n := h.refuels.Load(); n < 95 || n > 110 {
		t.Fatalf("refuel called %d times, want about 100", n)
	}
	// The name section follows the renumbering.
	if n := b.ExportedFunction("direct").Definition().Name(); n != "direct" {
		t.Fatalf("metered direct is named %q", n)
	}
	if _, ok := b.(api.Module); !ok {
		t.Fatal("not a module")
	}
}

func TestMeteredLoopIsStopped(t *testing.T) {
	metered, err := meter.Instrument(testModule(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, 1000, 50)
	m := h.instantiate(t, metered, "spin")
	_, err = m.ExportedFunction("spin").Call(context.Background())
	var exit *sys.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != sys.ExitCodeDeadlineExceeded {
		t.Fatalf("spin returned %v, want the exit from refuel", err)
	}
	if n := h.refuels.Load(); n != 51 {
		t.Fatalf("refuel called %d times, want 51", n)
	}
}

func TestImportsAndDebugSections(t *testing.T) {
	metered, err := meter.Instrument(testModule(), 10)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, metered)
	if err != nil {
		t.Fatal(err)
	}
	var imports []string
	for _, f := range cm.ImportedFunctions() {
		mod, n, _ := f.Import()
		imports = append(imports, mod+"."+n)
	}
	if len(imports) != 2 || imports[0] != "env.add1" || imports[1] != meter.Module+"."+meter.Func {
		t.Fatalf("imports %v", imports)
	}
	for n := range cm.CustomSections() {
		if cm.CustomSections()[n].Name() == ".debug_info" {
			t.Fatal("DWARF section kept")
		}
	}
}

func TestUnsupportedModules(t *testing.T) {
	good := testModule()
	withGC := append([]byte(nil), good...)
	// Replace spin's "br 0" (0x0c 0x00) with a GC-prefixed opcode.
	for i := 0; i+5 < len(withGC); i++ {
		if withGC[i] == 0x03 && withGC[i+1] == 0x40 && withGC[i+2] == 0x0c && withGC[i+3] == 0 && withGC[i+4] == 0x0b {
			withGC[i+2] = 0xfb
			break
		}
	}
	// getg reads global 1 ($g); make it read global 2, which does not
	// exist, and which the fuel global would become.
	fuelThief := append([]byte(nil), good...)
	for i := 0; i+4 < len(fuelThief); i++ {
		if fuelThief[i] == 0x23 && fuelThief[i+1] == 1 && fuelThief[i+2] == 0x23 && fuelThief[i+3] == 0 && fuelThief[i+4] == 0x6a {
			fuelThief[i+1] = 2
			break
		}
	}
	alreadyMetered, err := meter.Instrument(good, 10)
	if err != nil {
		t.Fatal(err)
	}
	for name, wasm := range map[string][]byte{
		"GC opcode":       withGC,
		"unknown global":  fuelThief,
		"truncated":       good[:len(good)-2],
		"not wasm":        []byte("hello, world"),
		"empty":           nil,
		"metered already": alreadyMetered,
	} {
		if _, err := meter.Instrument(wasm, 10); !errors.Is(err, meter.ErrUnsupported) {
			t.Errorf("%s: error %v, want ErrUnsupported", name, err)
		}
	}
}

// FuzzInstrument checks that the rewrite never panics or runs away on any
// input, and that what it produces parses again as a module (section
// structure, imports, code): a second rewrite fails only because the module
// is metered already. (Compiling arbitrary inputs with wazero here would
// test wazero's own limits; TestMeteredModuleBehavesTheSame and the engine
// tests compile real modules.)
func FuzzInstrument(f *testing.F) {
	f.Add(testModule())
	f.Add(envModule())
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := meter.Instrument(wasm, 100)
		if err != nil {
			if !errors.Is(err, meter.ErrUnsupported) {
				t.Fatalf("error %v does not wrap ErrUnsupported", err)
			}
			return
		}
		_, err = meter.Instrument(out, 100)
		if err == nil || !strings.Contains(err.Error(), "already imports") {
			t.Fatalf("re-instrumenting the output: %v, want the already-metered refusal", err)
		}
	})
}
