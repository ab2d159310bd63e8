// Package wasmcomp runs components compiled to WebAssembly: it inspects a
// module (ABI marker, imports, descriptor), checks its capabilities against
// what the component is granted, keeps a bounded pool of instances that
// serve one call each, and adapts the ABI to the host/component contract, so
// the API cannot tell a Wasm component from a builtin.
//
// Untrusted guests run interruptible: a call past its deadline, a trap or an
// out-of-memory ends that instance, never the host; the pool replaces it.
package wasmcomp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/internal/engine"
)

// Loader inspects and loads Wasm modules with one engine factory. It is
// safe for concurrent use.
type Loader struct {
	factory    engine.Factory
	log        *slog.Logger
	inspectDir string // the inspection cache (inspectcache.go); "": none

	// locks serialise, per module digest, compiling against instantiating:
	// engines of one factory share compiled code, and wazero writes a
	// cached module's entry preambles on every compile of it while another
	// runtime may be instantiating it (a data race -race found).
	locksMu sync.Mutex
	locks   map[string]*sync.RWMutex
}

// moduleLock returns the lock of the module with digest.
func (l *Loader) moduleLock(digest string) *sync.RWMutex {
	l.locksMu.Lock()
	defer l.locksMu.Unlock()
	if l.locks == nil {
		l.locks = map[string]*sync.RWMutex{}
	}
	lk := l.locks[digest]
	if lk == nil {
		lk = &sync.RWMutex{}
		l.locks[digest] = lk
	}
	return lk
}

// NewLoader returns a loader over factory.
func NewLoader(factory engine.Factory, log *slog.Logger) *Loader {
	return &Loader{factory: factory, log: log}
}

// Engine names the engine the loader runs.
func (l *Loader) Engine() string { return l.factory.Name() }

// Module is an inspected .wasm file.
type Module struct {
	Path       string
	Digest     string // "sha256:<hex>"
	Descriptor abi.Descriptor
	Imports    []engine.Import
	// ImportModules are the distinct import module names, sorted.
	ImportModules []string

	bytes *moduleBytes // shared by copies of the Module
}

// moduleBytes holds a module's bytes until they are released.
type moduleBytes struct {
	mu   sync.Mutex
	wasm []byte // nil once released (a module read from Path)
}

// source returns the module's bytes: those inspected, or, once released,
// the file at Path read again, refused if it no longer has the module's
// digest.
func (m *Module) source() ([]byte, error) {
	m.bytes.mu.Lock()
	wasm := m.bytes.wasm
	m.bytes.mu.Unlock()
	if wasm != nil {
		return wasm, nil
	}
	wasm, err := os.ReadFile(m.Path)
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(wasm); "sha256:"+hex.EncodeToString(sum[:]) != m.Digest {
		return nil, fmt.Errorf("%s changed since it was inspected (%s)", m.Path, m.Digest)
	}
	return wasm, nil
}

// release drops the module's bytes once a component has compiled them,
// when they can be read again from Path: a Go guest is several MB, which
// every started module would otherwise keep on the heap for as long as
// the host runs. A later compile (a component added by a reload) reads the
// file again.
func (m *Module) release() {
	if m.Path == "" {
		return
	}
	m.bytes.mu.Lock()
	m.bytes.wasm = nil
	m.bytes.mu.Unlock()
}

// ABIVersion is "v1.<minor>".
func (m *Module) ABIVersion() string {
	return fmt.Sprintf("v%d.%d", abi.VersionMajor, m.Descriptor.ABIMinor)
}

// Provides reports whether the module serves component type typ.
func (m *Module) Provides(typ string) bool { return slices.Contains(m.Descriptor.Types, typ) }

// known import modules; anything else is refused at load.
var knownModules = map[string]bool{
	abi.ModuleHost: true, abi.ModuleLog: true, abi.ModuleSock: true, abi.ModuleHTTP: true, abi.ModuleWASI: true,
}

// InspectFile reads and inspects the module at path.
func (l *Loader) InspectFile(ctx context.Context, path string) (*Module, error) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := l.Inspect(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.Path = path
	return m, nil
}

// Inspect compiles wasm, checks the ABI marker and imports, and reads the
// descriptor by running wapr_info in a throwaway instance with no grants,
// unless the inspection cache already holds what that found.
func (l *Loader) Inspect(ctx context.Context, wasm []byte) (*Module, error) {
	return l.InspectSum(ctx, wasm, sha256.Sum256(wasm))
}

// InspectSum is Inspect for a caller that has the SHA-256 of wasm already.
func (l *Loader) InspectSum(ctx context.Context, wasm []byte, sum [sha256.Size]byte) (*Module, error) {
	hexSum := hex.EncodeToString(sum[:])
	m := &Module{Digest: "sha256:" + hexSum, bytes: &moduleBytes{wasm: wasm}}
	if l.cachedInspection(hexSum, m) {
		return m, nil
	}
	eng, err := l.factory.New(ctx, engine.Config{MemoryLimitPages: pages(DefaultSettings().MemoryLimitBytes), Interruptible: true, HostModules: hostModules()})
	if err != nil {
		return nil, err
	}
	defer eng.Close(ctx)
	// The throwaway instance below is made here, not by newInstance: hold
	// the module's lock (Loader.locks) for the compile and it.
	lk := l.moduleLock(m.Digest)
	lk.Lock()
	defer lk.Unlock()
	cm, err := eng.Compile(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("compiling: %w", err)
	}
	exports := cm.Exports()
	markers := []string{}
	for _, e := range exports {
		if strings.HasPrefix(e, "wapr_abi_v") {
			markers = append(markers, e)
		}
	}
	switch {
	case len(markers) == 0:
		return nil, errors.New("not a wapr component: it exports no wapr_abi_v<N> marker")
	case !slices.Contains(markers, abi.ExportMarker):
		return nil, fmt.Errorf("unsupported ABI %s: this host speaks %s", strings.Join(markers, ", "), abi.ExportMarker)
	}
	for _, need := range []string{abi.ExportInfo, abi.ExportInit, abi.ExportMemory} {
		if !slices.Contains(exports, need) {
			return nil, fmt.Errorf("the module does not export %s", need)
		}
	}
	m.Imports = cm.Imports()
	if err := checkImports(m.Imports); err != nil {
		return nil, err
	}
	m.ImportModules = importModules(m.Imports)

	// A throwaway component with no grants runs wapr_info.
	c := &Component{log: l.log, settings: DefaultSettings(), module: cm}
	c.http = newHTTPClient(c) // with no grants: every destination is denied
	i := &instance{c: c, socks: map[int32]*hostSock{}}
	inst, err := cm.Instantiate(ctx, i, engine.InstanceConfig{})
	if err != nil {
		return nil, fmt.Errorf("instantiating: %w", err)
	}
	i.inst = inst
	defer inst.Close(ctx)
	callCtx, cancel := context.WithTimeout(ctx, c.settings.CallTimeout)
	defer cancel()
	if f := inst.Func(abi.ExportInitialize); f != nil {
		if _, err := f.Call(callCtx); err != nil {
			return nil, fmt.Errorf("%s: %w", abi.ExportInitialize, err)
		}
	}
	info := inst.Func(abi.ExportInfo)
	status, out, err := i.call(callCtx, info, argsNone, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", abi.ExportInfo, err)
	}
	if status != abi.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", abi.ExportInfo, status, errorMessage(out))
	}
	if err := m.Descriptor.Decode(out); err != nil {
		return nil, fmt.Errorf("%s: undecodable descriptor: %w", abi.ExportInfo, err)
	}
	if len(m.Descriptor.Types) == 0 {
		return nil, fmt.Errorf("%s: the descriptor lists no component types", abi.ExportInfo)
	}
	l.storeInspection(hexSum, out, m.Imports)
	return m, nil
}

// checkImports refuses an import from a module the host does not offer.
func checkImports(imports []engine.Import) error {
	for _, imp := range imports {
		if !knownModules[imp.Module] {
			return fmt.Errorf("the module imports %s.%s: no such capability (known: %s)", imp.Module, imp.Name, strings.Join(sortedKeys(knownModules), ", "))
		}
	}
	return nil
}

// importModules lists the distinct modules of imports, sorted.
func importModules(imports []engine.Import) []string {
	mods := map[string]bool{}
	for _, imp := range imports {
		mods[imp.Module] = true
	}
	return sortedKeys(mods)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func pages(bytes uint64) uint32 { return uint32((bytes + 65535) / 65536) }

// Component is one Component resource served by a Wasm module: an engine
// with the component's limits, the compiled module and a pool of instances.
type Component struct {
	mod      *Module
	loader   *Loader
	name     string
	typ      string
	metadata map[string]string
	settings Settings
	allow    allowList
	log      *slog.Logger

	eng    engine.Engine
	module engine.Module
	pool   *pool
	http   *http.Client

	closeOnce sync.Once
	stopTicks context.CancelFunc
	ticks     sync.WaitGroup
}

// NewComponent prepares (without starting) a component of type typ named
// name, served by m, with the limits of its annotations.
func (l *Loader) NewComponent(m *Module, name, typ string, annotations map[string]string) (*Component, error) {
	if !m.Provides(typ) {
		return nil, fmt.Errorf("module %s does not provide %s (it provides %s)", m.Path, typ, strings.Join(m.Descriptor.Types, ", "))
	}
	s, err := ParseSettings(annotations)
	if err != nil {
		return nil, err
	}
	return &Component{
		mod: m, loader: l, name: name, typ: typ, settings: s,
		log: l.log.With("component", name, "type", typ, "runtime", "wasm"),
	}, nil
}

// Module is the module serving the component.
func (c *Component) Module() *Module { return c.mod }

// Engine names the engine running the component.
func (c *Component) Engine() string { return c.loader.factory.Name() }

// start compiles the module under the component's limits, checks the
// grants, and pre-warms the pool (the first instance runs wapr_init, so a
// component that cannot initialise fails here).
func (c *Component) start(ctx context.Context, metadata map[string]string) error {
	c.metadata = metadata
	var endpoints []string
	for _, key := range c.mod.Descriptor.EndpointKeys {
		for k, v := range metadata {
			if strings.EqualFold(k, key) {
				endpoints = append(endpoints, v)
			}
		}
	}
	c.allow = newAllowList(endpoints, c.settings.AllowHosts)
	for _, mod := range c.mod.ImportModules {
		if (mod == abi.ModuleSock || mod == abi.ModuleHTTP) && c.allow.empty() {
			return fmt.Errorf("the module imports %s but the component grants no network destination: set the metadata keys its descriptor names (%s) or the %s annotation",
				mod, strings.Join(c.mod.Descriptor.EndpointKeys, ", "), AnnotationAllowHosts)
		}
	}
	eng, err := c.loader.factory.New(ctx, engine.Config{
		MemoryLimitPages: pages(c.settings.MemoryLimitBytes),
		Interruptible:    !c.settings.Trusted,
		HostModules:      hostModules(),
	})
	if err != nil {
		return err
	}
	wasm, err := c.mod.source()
	if err != nil {
		eng.Close(ctx)
		return err
	}
	lk := c.loader.moduleLock(c.mod.Digest)
	lk.Lock()
	cm, err := eng.Compile(ctx, wasm)
	lk.Unlock()
	if err != nil {
		eng.Close(ctx)
		return fmt.Errorf("compiling under the component's limits: %w", err)
	}
	c.mod.release()
	c.eng, c.module = eng, cm
	c.http = newHTTPClient(c)
	c.pool = newPool(c.settings.PoolSize, c.newInstance, c.settings.RecycleAfterCalls, uint32(c.settings.MemoryLimitBytes/4*3), c.log)
	if err := c.pool.warm(ctx, 1); err != nil {
		c.shutdown(ctx)
		return err
	}
	tickCtx, stopTicks := context.WithCancel(context.Background())
	c.stopTicks = stopTicks
	c.ticks.Go(func() { c.tickLoop(tickCtx) })
	return nil
}

// tickInterval is how often idle instances get a wapr_tick.
const tickInterval = 10 * time.Second

func (c *Component) tickLoop(ctx context.Context) {
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.pool.tickIdle(ctx)
		case <-ctx.Done():
			return
		}
	}
}

// closed reports whether the component was closed (or never started).
func (c *Component) closed() bool { return c.pool == nil || c.pool.isClosed() }

// shutdown closes the pool and the engine; safe to call twice.
func (c *Component) shutdown(ctx context.Context) error {
	var err error
	c.closeOnce.Do(func() {
		if c.stopTicks != nil {
			c.stopTicks()
			c.ticks.Wait()
		}
		if c.pool != nil {
			err = c.pool.close(ctx)
		}
		if c.eng != nil {
			if cerr := c.eng.Close(ctx); err == nil {
				err = cerr
			}
		}
	})
	return err
}
