//go:build wasmtime

package wasmtime

import (
	"context"
	"testing"

	wt "github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/wapr-dev/wapr/host/internal/engine"
	"github.com/wapr-dev/wapr/host/internal/engine/enginetest"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

// The benchmarks here compare our call paths with wasmtime-go's own on the
// same instances, to justify the cgo shim.

func countHostFuncs() int {
	n := 0
	hostFuncs.Range(func(any, any) bool { n++; return true })
	return n
}

// TestHostFuncsReleased: wasmtime drops an engine's host functions, and
// their handles, once the linker and every instance using them are gone.
func TestHostFuncsReleased(t *testing.T) {
	before := countHostFuncs()
	f, err := NewFactory("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	nop := func(_ context.Context, _ engine.Caller, stack []uint64) { stack[0] = 0 }
	eng, err := f.New(ctx, engine.Config{Interruptible: true, HostModules: []engine.HostModule{{Name: "env", Funcs: []engine.HostFunc{
		{Name: "nop", Params: []engine.ValueType{engine.I32, engine.I32}, Results: []engine.ValueType{engine.I32}, Fn: nop},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := countHostFuncs(); n != before+2 { // fd_write and env.nop
		t.Fatalf("%d host functions registered, want %d", n, before+2)
	}
	wasm, _ := wt.Wat2Wasm(hostLoopWAT)
	m, err := eng.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, nil, engine.InstanceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	loop := inst.Func("loop")
	if _, err := loop.Call(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countHostFuncs(); n != before {
		t.Fatalf("%d host functions registered after close, want %d", n, before)
	}
	if _, err := loop.Call(ctx, 3); err == nil {
		t.Fatal("called an instance of a closed engine")
	}
	if inst.Func("loop") != nil {
		t.Fatal("Func on a closed instance")
	}
}

func goGuest(b *testing.B, interruptible bool) *instance {
	f, err := NewFactory("")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	eng, err := f.New(ctx, engine.Config{Interruptible: interruptible, HostModules: enginetest.HostStubs()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close(ctx) })
	m, err := eng.Compile(ctx, wasmtest.Bytes(b, enginetest.MisbehavePkg))
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
	return inst.(*instance)
}

// BenchmarkCallPath: an export call of the Go guest through wasmtime-go's
// Func.Call ("stock"; with Store.SetEpochDeadline first when interruptible,
// as our path does) and through this package's Func ("shim").
func BenchmarkCallPath(b *testing.B) {
	for _, intr := range []bool{false, true} {
		b.Run(map[bool]string{false: "trusted", true: "interruptible"}[intr], func(b *testing.B) {
			i := goGuest(b, intr)
			ctx := context.Background()
			b.Run("stock/noop", func(b *testing.B) {
				f := i.inst.GetFunc(i.store, "bench_noop")
				b.ReportAllocs()
				for b.Loop() {
					if intr {
						i.store.SetEpochDeadline(1)
					}
					if _, err := f.Call(i.store); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("stock/alloc1KiB", func(b *testing.B) {
				f := i.inst.GetFunc(i.store, "bench_alloc")
				b.ReportAllocs()
				for b.Loop() {
					if intr {
						i.store.SetEpochDeadline(1)
					}
					if _, err := f.Call(i.store, int32(1024)); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("shim/noop", func(b *testing.B) {
				f := i.Func("bench_noop")
				b.ReportAllocs()
				for b.Loop() {
					if _, err := f.Call(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("shim/alloc1KiB", func(b *testing.B) {
				f := i.Func("bench_alloc")
				b.ReportAllocs()
				for b.Loop() {
					if _, err := f.Call(ctx, 1024); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

const hostLoopWAT = `(module
  (import "env" "nop" (func $nop (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "loop") (param $n i32) (result i64)
    (local $k i32)
    (loop $l
      (drop (call $nop (local.get $k) (i32.const 16)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $k) (local.get $n))))
    (i64.const 0)))`

// BenchmarkHostCall: the cost of one guest→host call of an (i32, i32) ->
// i32 function that reads 16 bytes of guest memory, through a host
// function defined with wasmtime-go's Linker.FuncNew ("stock") and through
// this package's unchecked trampoline ("shim"; "shim-nomemory" skips the
// memory read). Each op is 1000 calls.
func BenchmarkHostCall(b *testing.B) {
	wasm, err := wt.Wat2Wasm(hostLoopWAT)
	if err != nil {
		b.Fatal(err)
	}
	const n = 1000
	b.Run("stock", func(b *testing.B) {
		eng := wt.NewEngine()
		linker := wt.NewLinker(eng)
		err := linker.FuncNew("env", "nop", wt.NewFuncType(
			[]*wt.ValType{wt.NewValType(wt.KindI32), wt.NewValType(wt.KindI32)},
			[]*wt.ValType{wt.NewValType(wt.KindI32)}),
			func(c *wt.Caller, args []wt.Val) ([]wt.Val, *wt.Trap) {
				mem := c.GetExport("memory").Memory().UnsafeData(c)
				_ = mem[args[0].I32()&0xffff : args[0].I32()&0xffff+args[1].I32()]
				return []wt.Val{wt.ValI32(0)}, nil
			})
		if err != nil {
			b.Fatal(err)
		}
		mod, err := wt.NewModule(eng, wasm)
		if err != nil {
			b.Fatal(err)
		}
		store := wt.NewStore(eng)
		inst, err := linker.Instantiate(store, mod)
		if err != nil {
			b.Fatal(err)
		}
		f := inst.GetFunc(store, "loop")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.Call(store, int32(n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, readMem := range []bool{true, false} {
		name := map[bool]string{true: "shim", false: "shim-nomemory"}[readMem]
		b.Run(name, func(b *testing.B) { benchmarkHostCallShim(b, wasm, n, readMem) })
	}
}

func benchmarkHostCallShim(b *testing.B, wasm []byte, n uint64, readMem bool) {
	f, err := NewFactory("")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	nop := func(_ context.Context, c engine.Caller, stack []uint64) {
		if !readMem {
			stack[0] = 0
			return
		}
		if _, ok := c.Memory().Read(uint32(stack[0])&0xffff, uint32(stack[1])); !ok {
			panic("read")
		}
		stack[0] = 0
	}
	eng, err := f.New(ctx, engine.Config{HostModules: []engine.HostModule{{Name: "env", Funcs: []engine.HostFunc{
		{Name: "nop", Params: []engine.ValueType{engine.I32, engine.I32}, Results: []engine.ValueType{engine.I32}, Fn: nop},
	}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close(ctx)
	m, err := eng.Compile(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, nil, engine.InstanceConfig{})
	if err != nil {
		b.Fatal(err)
	}
	loop := inst.Func("loop")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := loop.Call(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
}
