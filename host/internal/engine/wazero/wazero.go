// Package wazero runs wapr's Wasm components on wazero, the pure-Go
// WebAssembly runtime (the default engine).
//
// Each Engine is one wazero.Runtime, since memory limits and interruption
// are runtime-wide settings; all engines of a Factory share one on-disk
// compilation cache, so a module compiles once per machine and loads in
// milliseconds afterwards.
//
// # Interruption
//
// An interruptible engine meters its modules (package meter): the compiled
// code counts function entries and loop iterations and calls the host every
// refuelEvery of them, and the host stops a call whose context is done
// there. wazero's own WithCloseOnContextDone instead leaves the compiled
// code at every loop iteration, which costs a Go guest several times its
// useful work. A module the rewrite does not understand runs on a second
// runtime with WithCloseOnContextDone, created when first needed.
package wazero

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wapr-dev/wapr/host/internal/engine"
	"github.com/wapr-dev/wapr/host/internal/engine/meter"
)

// Factory makes wazero engines sharing a compilation cache.
type Factory struct {
	cache wazero.CompilationCache
	// dir is the compilation cache's folder ("": memory only); metered
	// copies are kept in its subfolder meteredDir too, so that a restart
	// neither rewrites a module nor compiles it.
	dir string

	// metered remembers recent rewrites by the digest of their input:
	// a module is compiled for inspection and again for each component
	// it serves, and rewriting a Go guest takes tens of milliseconds.
	mu      sync.Mutex
	metered map[[32]byte]meterResult
}

// meterResult is a rewrite: its bytes, or where the cache folder holds
// them (a copy on disk is read again when needed rather than kept: it is
// as large as the module, several MB for a Go guest, for the life of the
// process), or why the module cannot be metered.
type meterResult struct {
	wasm []byte
	path string // with wasm nil: the metered copy in the cache folder
	err  error
}

// maxMetered bounds Factory.metered.
const maxMetered = 16

// meteredDir is the subfolder of the compilation cache holding metered
// copies, one file per input digest, rewrite and allowance.
const meteredDir = "wapr-metered"

// meter returns the metered copy of wasm, rewriting it at most once per
// process, and once per cache folder when there is one.
func (f *Factory) meter(wasm []byte) ([]byte, error) {
	key := sha256.Sum256(wasm)
	f.mu.Lock()
	r, ok := f.metered[key]
	f.mu.Unlock()
	if ok && r.wasm == nil && r.err == nil {
		if b, ok := readMetered(r.path); ok {
			return b, nil
		}
		ok = false // gone from the folder: rewritten below
	}
	if ok {
		return r.wasm, r.err
	}
	var path string
	if f.dir != "" {
		path = filepath.Join(f.dir, meteredDir, fmt.Sprintf("%x-r%d-f%d.wasm", key, meter.Rewrite, refuelEvery))
	}
	keep := meterResult{path: path} // on disk
	if b, ok := readMetered(path); ok {
		r.wasm = b
	} else {
		r.wasm, r.err = meter.Instrument(wasm, refuelEvery)
		// Best effort: a miss rewrites again.
		if r.err != nil || path == "" ||
			engine.WriteCacheFile(path, binary.BigEndian.AppendUint32(nil, crc32.Checksum(r.wasm, castagnoli)), r.wasm) != nil {
			keep = r
		}
	}
	f.mu.Lock()
	if f.metered == nil || len(f.metered) >= maxMetered {
		f.metered = map[[32]byte]meterResult{}
	}
	f.metered[key] = keep
	f.mu.Unlock()
	return r.wasm, r.err
}

// castagnoli is the CRC of cached metered copies (computed in hardware).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readMetered reads a metered copy the cache holds at path: the CRC-32C of
// the module (4 bytes, big endian), then the module. A file that does not
// match its checksum (cut short, damaged) is a miss. The folder is as
// trusted as the compiled code beside it: the checksum catches damage, not
// tampering.
func readMetered(path string) ([]byte, bool) {
	if path == "" {
		return nil, false
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 4 {
		return nil, false
	}
	if crc32.Checksum(b[4:], castagnoli) != binary.BigEndian.Uint32(b) {
		return nil, false
	}
	return b[4:], true
}

// NewFactory returns a factory caching compiled code in dir; an empty dir
// keeps the cache in memory only.
func NewFactory(dir string) (*Factory, error) {
	if dir == "" {
		return &Factory{cache: wazero.NewCompilationCache()}, nil
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wazero compilation cache in %s: %w", dir, err)
	}
	return &Factory{cache: c, dir: dir}, nil
}

// Name is "wazero".
func (f *Factory) Name() string { return "wazero" }

// Close releases the cache.
func (f *Factory) Close(ctx context.Context) error { return f.cache.Close(ctx) }

// refuelEvery is the fuel a metered guest gets per host check: function
// entries plus loop iterations. A check costs about as much as a host call,
// so this keeps metering under a percent of a busy guest's time while a
// guest that never returns is stopped within tens of microseconds of its
// deadline.
const refuelEvery = 20000

// Engine is one wazero runtime (two when a module cannot be metered).
type Engine struct {
	f   *Factory
	cfg engine.Config
	// rt runs every module: metered ones when cfg.Interruptible.
	rt wazero.Runtime

	strictOnce sync.Once
	strict     wazero.Runtime // WithCloseOnContextDone, for unmeterable modules
	strictErr  error

	instances sync.Map // instance name → *instance (for host calls)
	seq       atomic.Uint64
	// fuelChecks counts refuel calls: metered guests' deadline checks.
	fuelChecks atomic.Uint64
}

// FuelChecks is how many times metered guests of the engine ran out of
// fuel and the host checked their deadline (the meter's interrupts).
func (e *Engine) FuelChecks() uint64 { return e.fuelChecks.Load() }

// New returns an engine under cfg with its host modules and WASI ready.
func (f *Factory) New(ctx context.Context, cfg engine.Config) (engine.Engine, error) {
	e := &Engine{f: f, cfg: cfg}
	rt, err := e.newRuntime(ctx, false)
	if err != nil {
		return nil, err
	}
	e.rt = rt
	return e, nil
}

// newRuntime makes a runtime with WASI, the host modules and, for an
// interruptible engine, the meter's refuel function. closeOnDone turns on
// wazero's own interruption instead.
func (e *Engine) newRuntime(ctx context.Context, closeOnDone bool) (wazero.Runtime, error) {
	rc := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(e.f.cache).
		WithCloseOnContextDone(closeOnDone).
		WithCoreFeatures(api.CoreFeaturesV2)
	if e.cfg.MemoryLimitPages > 0 {
		rc = rc.WithMemoryLimitPages(e.cfg.MemoryLimitPages)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wazero: WASI: %w", err)
	}
	for _, hm := range e.cfg.HostModules {
		b := rt.NewHostModuleBuilder(hm.Name)
		for _, hf := range hm.Funcs {
			fn := hf.Fn
			b.NewFunctionBuilder().
				WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
					fn(ctx, e.caller(m), stack)
				}), valueTypes(hf.Params), valueTypes(hf.Results)).
				Export(hf.Name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			rt.Close(ctx)
			return nil, fmt.Errorf("wazero: host module %s: %w", hm.Name, err)
		}
	}
	if e.cfg.Interruptible && !closeOnDone {
		_, err := rt.NewHostModuleBuilder(meter.Module).
			NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
				e.fuelChecks.Add(1)
				refuel(ctx, m, stack)
			}), nil, []api.ValueType{api.ValueTypeI32}).
			Export(meter.Func).
			Instantiate(ctx)
		if err != nil {
			rt.Close(ctx)
			return nil, fmt.Errorf("wazero: meter: %w", err)
		}
	}
	return rt, nil
}

// refuel is called by a metered guest whose fuel ran out: it stops the
// call when its context is done or its deadline passed, else hands out the
// next allowance and yields.
func refuel(ctx context.Context, m api.Module, stack []uint64) {
	err := ctx.Err()
	// The deadline itself, too: a context learns of it only when its
	// timer's goroutine runs, which on a machine busy with guests (hung
	// ones spin on every core) comes late.
	if d, ok := ctx.Deadline(); ok && err == nil && !time.Now().Before(d) {
		err = context.DeadlineExceeded
	}
	if err != nil {
		code := sys.ExitCodeContextCanceled
		if errors.Is(err, context.DeadlineExceeded) {
			code = sys.ExitCodeDeadlineExceeded
		}
		// As WASI's proc_exit does: close, then unwind the guest.
		_ = m.CloseWithExitCode(ctx, code)
		panic(sys.NewExitError(code))
	}
	stack[0] = refuelEvery
	// Let other goroutines run. Go preempts a goroutine that runs on only
	// every 10-20 ms, and a guest spinning in a loop is such a goroutine:
	// with more busy guests than cores, a request being read, a caller
	// whose deadline passed or a guest due for interruption waited tens
	// to hundreds of milliseconds for a core. A yield here costs about
	// 0.1 µs every 30 µs or more of guest work.
	runtime.Gosched()
}

// strictRuntime returns the runtime with wazero's own interruption.
func (e *Engine) strictRuntime(ctx context.Context) (wazero.Runtime, error) {
	e.strictOnce.Do(func() { e.strict, e.strictErr = e.newRuntime(ctx, true) })
	return e.strict, e.strictErr
}

func valueTypes(ts []engine.ValueType) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range ts {
		out[i] = api.ValueType(t)
	}
	return out
}

// caller finds the instance a host call comes from.
func (e *Engine) caller(m api.Module) engine.Caller {
	if v, ok := e.instances.Load(m.Name()); ok {
		return v.(*instance)
	}
	return orphan{m}
}

// orphan is a caller not created through Instantiate (cannot happen in
// practice): it has memory but no data.
type orphan struct{ m api.Module }

func (o orphan) Memory() engine.Memory { return memory{o.m.Memory()} }
func (o orphan) Data() any             { return nil }

// Compile compiles wasm (or loads it from the cache); an interruptible
// engine compiles a metered copy.
func (e *Engine) Compile(ctx context.Context, wasm []byte) (engine.Module, error) {
	rt := e.rt
	if e.cfg.Interruptible {
		metered, err := e.f.meter(wasm)
		switch {
		case err == nil:
			wasm = metered
		case errors.Is(err, meter.ErrUnsupported):
			if rt, err = e.strictRuntime(ctx); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
	}
	// Compiling a Go guest takes seconds cold; use every core.
	cm, err := rt.CompileModule(experimental.WithCompilationWorkers(ctx, runtime.GOMAXPROCS(0)), wasm)
	if err != nil {
		return nil, err
	}
	return &module{e: e, rt: rt, cm: cm}, nil
}

// Close closes the runtimes and every instance in them.
func (e *Engine) Close(ctx context.Context) error {
	err := e.rt.Close(ctx)
	if e.strict != nil {
		err = errors.Join(err, e.strict.Close(ctx))
	}
	return err
}

type module struct {
	e  *Engine
	rt wazero.Runtime
	cm wazero.CompiledModule
}

// Imports lists the module's function imports, without the meter's.
func (m *module) Imports() []engine.Import {
	var out []engine.Import
	for _, f := range m.cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == meter.Module {
			continue
		}
		out = append(out, engine.Import{Module: mod, Name: name})
	}
	return out
}

func (m *module) Exports() []string {
	var out []string
	for name := range m.cm.ExportedFunctions() {
		out = append(out, name)
	}
	for name := range m.cm.ExportedMemories() {
		out = append(out, name)
	}
	return out
}

func (m *module) Close(ctx context.Context) error { return m.cm.Close(ctx) }

func (m *module) Instantiate(ctx context.Context, data any, cfg engine.InstanceConfig) (engine.Instance, error) {
	name := "i" + strconv.FormatUint(m.e.seq.Add(1), 10)
	inst := &instance{e: m.e, name: name, data: data}
	m.e.instances.Store(name, inst)
	mc := wazero.NewModuleConfig().
		WithName(name).
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)
	if cfg.Stdout != nil {
		mc = mc.WithStdout(cfg.Stdout)
	}
	if cfg.Stderr != nil {
		mc = mc.WithStderr(cfg.Stderr)
	}
	// The instance's memory lives outside the Go heap (memory.go).
	alloc := experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
		inst.lin = newLinearMemory(capacity, max)
		return inst.lin
	})
	mod, err := m.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, alloc), m.cm, mc)
	if err != nil {
		m.e.instances.Delete(name)
		return nil, classify(ctx, err)
	}
	inst.mod = mod
	inst.mem = memory{mod.Memory()}
	return inst, nil
}

type instance struct {
	e    *Engine
	name string
	data any
	mod  api.Module
	mem  memory
	// lin is the memory the module defines (nil if none); Close frees it.
	lin *linearMemory
}

func (i *instance) Memory() engine.Memory { return i.mem }
func (i *instance) Data() any             { return i.data }

func (i *instance) Func(name string) engine.Func {
	f := i.mod.ExportedFunction(name)
	if f == nil {
		return nil
	}
	n := max(len(f.Definition().ParamTypes()), len(f.Definition().ResultTypes()), 1)
	return &function{f: f, lin: i.lin, stack: make([]uint64, n), params: len(f.Definition().ParamTypes()), results: len(f.Definition().ResultTypes())}
}

func (i *instance) Close(ctx context.Context) error {
	i.e.instances.Delete(i.name)
	return i.mod.Close(ctx)
}

// function reuses one stack: an instance serves one call at a time.
type function struct {
	f               api.Function
	lin             *linearMemory // the instance's memory, nil if none
	stack           []uint64
	params, results int
}

// errClosed is returned by calls on a closed instance.
var errClosed = errors.New("wasm instance closed")

func (f *function) Call(ctx context.Context, args ...uint64) (uint64, error) {
	if len(args) != f.params {
		return 0, fmt.Errorf("wasm export takes %d arguments, given %d", f.params, len(args))
	}
	copy(f.stack, args)
	// The memory must stay mapped while the guest runs (wazero recovers
	// the guest's and host functions' panics: CallWithStack returns).
	if f.lin != nil && !f.lin.enter() {
		return 0, errClosed
	}
	err := f.f.CallWithStack(ctx, f.stack)
	if f.lin != nil {
		f.lin.leave()
	}
	if err != nil {
		return 0, classify(ctx, err)
	}
	if f.results == 0 {
		return 0, nil
	}
	return f.stack[0], nil
}

// classify marks errors caused by the context as interruptions.
func classify(ctx context.Context, err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			return fmt.Errorf("%w: %w", engine.ErrInterrupted, err)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", engine.ErrInterrupted, err)
	}
	return err
}

type memory struct{ m api.Memory }

func (m memory) Read(offset, n uint32) ([]byte, bool) { return m.m.Read(offset, n) }
func (m memory) Write(offset uint32, b []byte) bool   { return m.m.Write(offset, b) }
func (m memory) Size() uint32                         { return m.m.Size() }
