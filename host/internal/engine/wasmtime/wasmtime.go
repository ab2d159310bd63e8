//go:build wasmtime

// Package wasmtime runs wapr's Wasm components on wasmtime through
// wasmtime-go (cgo). It is built only with -tags wasmtime; the default
// build stays pure Go on wazero.
//
// wasmtime-go is used for the setup (engines, compilation, serialization,
// linkers, WASI, stores, instantiation); the paths taken on every call are
// our own thin cgo over wasmtime's C API (shim.h, shim.c):
//
//   - An export call is one crossing into wasmtime_func_call_unchecked with
//     the function's type checked once and raw slots reused, instead of
//     wasmtime-go's Func.Call, which looks the type up and allocates
//     finalizer-backed objects on every call.
//   - Host functions are defined with wasmtime_linker_define_func_unchecked:
//     the C trampoline hands the raw slots to Go, which copies them to the
//     instance's []uint64 stack, without allocating.
//   - Interruption uses epoch interruption. Each engine made with
//     Config.Interruptible has a goroutine that increments the epoch every
//     10 ms; each call sets its store's deadline to the next tick, and at
//     every tick the store's epoch callback asks Go whether the call's
//     context is done (deadline or cancellation) or the engine is closing:
//     if so the call fails, otherwise it runs one more tick. So a done
//     context stops a call within about one tick, no goroutine or store
//     access from another thread is needed, and the cost is one callback
//     per 10 ms of guest execution.
//   - WASI is wasmtime's own (clocks, random, poll_oneoff, sched_yield,
//     proc_exit) with no arguments, environment or preopened directories,
//     except fd_write, which is shadowed by a host function writing fds 1
//     and 2 to the instance's Stdout and Stderr on the calling goroutine, so
//     a writer sees the output in order, within the call that produced it.
//
// Compiled modules are serialized to a cache (a directory, or memory when
// none is given), so a restart loads a module in milliseconds.
package wasmtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	wt "github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/wapr-dev/wapr/host/internal/engine"
)

// epochTick is how often an interruptible engine's epoch advances: the
// latency of stopping a call whose context is done.
const epochTick = 10 * time.Millisecond

// Factory makes wasmtime engines sharing a cache of compiled modules. It is
// safe for concurrent use.
type Factory struct {
	cache *cache
}

// NewFactory returns a factory caching compiled modules in dir (created if
// missing); an empty dir keeps them in memory, for the factory's lifetime.
func NewFactory(dir string) (*Factory, error) {
	if err := checkLayout(); err != nil {
		return nil, err
	}
	c, err := newCache(dir)
	if err != nil {
		return nil, err
	}
	return &Factory{cache: c}, nil
}

// Name is "wasmtime".
func (f *Factory) Name() string { return "wasmtime" }

// Close drops the in-memory cache; the factory stays usable.
func (f *Factory) Close(ctx context.Context) error {
	f.cache.reset()
	return nil
}

// Engine is one wasmtime engine with the linker of its host modules.
type Engine struct {
	f             *Factory
	cfg           engine.Config
	interruptible bool
	eng           *wt.Engine
	linker        *wt.Linker

	// closing makes the epoch callback stop every running call.
	closing  atomic.Bool
	stopTick chan struct{}
	ticking  sync.WaitGroup
	// use is held for reading while eng or linker are in use, for writing
	// when Close releases them.
	use sync.RWMutex

	mu        sync.Mutex
	closed    bool
	instances map[*instance]struct{}
	modules   map[*module]struct{}
	closeErr  error
}

// New returns an engine under cfg with WASI and its host modules defined.
func (f *Factory) New(ctx context.Context, cfg engine.Config) (engine.Engine, error) {
	wcfg := wt.NewConfig()
	wcfg.SetEpochInterruption(cfg.Interruptible)
	e := &Engine{
		f: f, cfg: cfg, interruptible: cfg.Interruptible,
		eng:       wt.NewEngineWithConfig(wcfg),
		instances: map[*instance]struct{}{},
		modules:   map[*module]struct{}{},
	}
	e.linker = wt.NewLinker(e.eng)
	if err := e.define(); err != nil {
		e.linker.Close()
		e.eng.Close()
		return nil, err
	}
	if e.interruptible {
		e.stopTick = make(chan struct{})
		e.ticking.Go(e.tick)
	}
	return e, nil
}

func (e *Engine) define() error {
	if err := e.linker.DefineWasi(); err != nil {
		return fmt.Errorf("wasmtime: WASI: %w", err)
	}
	e.linker.AllowShadowing(true)
	i32 := engine.I32
	err := defineHost(e.linker, wasiModule, "fd_write", &hostFunc{
		name: wasiModule + ".fd_write", params: []engine.ValueType{i32, i32, i32, i32}, results: 1, fdWrite: true,
	})
	e.linker.AllowShadowing(false)
	if err != nil {
		return fmt.Errorf("wasmtime: WASI fd_write: %w", err)
	}
	for _, hm := range e.cfg.HostModules {
		for _, hf := range hm.Funcs {
			for _, t := range append(append([]engine.ValueType(nil), hf.Params...), hf.Results...) {
				if t != engine.I32 && t != engine.I64 {
					return fmt.Errorf("wasmtime: host function %s.%s: unsupported value type %#x", hm.Name, hf.Name, byte(t))
				}
			}
			h := &hostFunc{name: hm.Name + "." + hf.Name, params: hf.Params, results: len(hf.Results), resultTypes: hf.Results, fn: hf.Fn}
			if err := defineHost(e.linker, hm.Name, hf.Name, h); err != nil {
				return fmt.Errorf("wasmtime: host function %s.%s: %w", hm.Name, hf.Name, err)
			}
		}
	}
	return nil
}

const wasiModule = "wasi_snapshot_preview1"

// tick advances the epoch until the engine closes.
func (e *Engine) tick() {
	t := time.NewTicker(epochTick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			e.eng.IncrementEpoch()
		case <-e.stopTick:
			return
		}
	}
}

// Compile compiles wasm, or loads it from the factory's cache. wasmtime
// compiles on all cores; ctx cannot interrupt it.
func (e *Engine) Compile(ctx context.Context, wasm []byte) (engine.Module, error) {
	if err := e.acquire(); err != nil {
		return nil, err
	}
	defer e.use.RUnlock()
	key := e.f.cache.key(wasm, e.interruptible)
	var mod *wt.Module
	if art := e.f.cache.load(key); art != nil {
		// A stale or incompatible artifact fails here: compile afresh and
		// overwrite it.
		if m, err := wt.NewModuleDeserialize(e.eng, art); err == nil {
			mod = m
		}
	}
	if mod == nil {
		m, err := wt.NewModule(e.eng, wasm)
		if err != nil {
			return nil, err
		}
		mod = m
		if art, err := mod.Serialize(); err == nil {
			// The cache only saves time: a failed write is not an error.
			_ = e.f.cache.store(key, art)
		}
	}
	m := &module{e: e, mod: mod}
	for _, it := range mod.Imports() {
		if it.Type().FuncType() == nil {
			continue
		}
		name := ""
		if n := it.Name(); n != nil {
			name = *n
		}
		m.imports = append(m.imports, engine.Import{Module: it.Module(), Name: name})
	}
	for _, ex := range mod.Exports() {
		if t := ex.Type(); t.FuncType() != nil || t.MemoryType() != nil {
			m.exports = append(m.exports, ex.Name())
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		mod.Close()
		return nil, errEngineClosed
	}
	e.modules[m] = struct{}{}
	return m, nil
}

var errEngineClosed = errors.New("wasmtime: the engine is closed")

// acquire read-locks use, unless the engine is closing; the caller
// releases it with e.use.RUnlock.
func (e *Engine) acquire() error {
	e.use.RLock()
	if e.closing.Load() {
		e.use.RUnlock()
		return errEngineClosed
	}
	return nil
}

// Close stops every call still running on the engine's instances (at the
// next epoch tick when interruptible; a trusted guest's call runs to its
// end), closes the instances and modules and releases the engine. When ctx
// ends first, Close returns an error and the release finishes in the
// background once the last call returns. Closing twice returns the first
// result.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return e.closeErr
	}
	e.closed = true
	e.closing.Store(true)
	insts := make([]*instance, 0, len(e.instances))
	for i := range e.instances {
		insts = append(insts, i)
	}
	mods := make([]*module, 0, len(e.modules))
	for m := range e.modules {
		mods = append(mods, m)
	}
	e.mu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, i := range insts {
			i.Close(context.Background())
		}
		for _, m := range mods {
			m.Close(context.Background())
		}
		if e.stopTick != nil {
			close(e.stopTick)
			e.ticking.Wait()
		}
		e.use.Lock()
		e.linker.Close()
		e.eng.Close()
		e.use.Unlock()
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("wasmtime: closing the engine: calls still running: %w", ctx.Err())
	}
	e.mu.Lock()
	e.closeErr = err
	e.mu.Unlock()
	return err
}

// module is a compiled module.
type module struct {
	e       *Engine
	imports []engine.Import
	exports []string
	mu      sync.RWMutex // held for reading while instantiating
	mod     *wt.Module   // nil once closed
}

func (m *module) Imports() []engine.Import { return m.imports }
func (m *module) Exports() []string        { return m.exports }

// Close releases the compiled code; instances made from it keep working.
func (m *module) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.mod != nil {
		m.mod.Close()
		m.mod = nil
	}
	m.mu.Unlock()
	m.e.mu.Lock()
	delete(m.e.modules, m)
	m.e.mu.Unlock()
	return nil
}
