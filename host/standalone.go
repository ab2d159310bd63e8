package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/internal/resources"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
)

// ComponentSource describes one component outside a running sidecar, for
// tools such as `wapr conformance`: a Component YAML and, optionally, the
// Wasm module that serves it (else a builtin from the registry does).
type ComponentSource struct {
	// ComponentFile holds the Component resource. When it holds several,
	// Name picks one.
	ComponentFile string
	Name          string
	// WasmFile, when set, serves the component in the sandbox.
	WasmFile     string
	WasmEngine   string // "wazero" (default) or "wasmtime"
	Registry     *Registry
	WasmCacheDir string
	Logger       *slog.Logger
}

// ComponentFactory makes fresh, uninitialised instances of one component.
type ComponentFactory struct {
	// Metadata is what Init must be given.
	Metadata component.Metadata
	// Served says what runs it ("wasm (wazero, sha256:…)" or "native (builtin)").
	Served string
	// New returns a new, uninitialised component: a state.Store,
	// pubsub.PubSub or a binding, as its type says.
	New func() (component.Lifecycle, error)
}

// LoadComponentSource reads src and returns a factory for its component.
func LoadComponentSource(ctx context.Context, src ComponentSource) (*ComponentFactory, error) {
	if src.Logger == nil {
		src.Logger = slog.Default()
	}
	data, err := os.ReadFile(src.ComponentFile)
	if err != nil {
		return nil, err
	}
	set, errs := resources.Parse(src.ComponentFile, data, "")
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var c *resources.Component
	for i := range set.Components {
		if src.Name == "" || set.Components[i].Name == src.Name {
			if c != nil {
				return nil, fmt.Errorf("%s holds several components; name one", src.ComponentFile)
			}
			c = &set.Components[i]
		}
	}
	if c == nil {
		return nil, fmt.Errorf("%s: no component %q", src.ComponentFile, src.Name)
	}
	if len(c.SecretRefs) > 0 {
		return nil, fmt.Errorf("%s: component %s takes metadata from secretKeyRef, which only a running sidecar resolves; give those items a value or an envRef here", src.ComponentFile, c.Name)
	}
	f := &ComponentFactory{Metadata: component.Metadata{Name: c.Name, Type: c.Type, Version: c.Version, Properties: c.Metadata}}
	h := &Host{opts: Options{Registry: src.Registry}, log: src.Logger}
	if src.WasmFile == "" {
		if src.Registry == nil {
			return nil, errors.New("no registry and no wasm module: nothing can serve the component")
		}
		if _, err := h.construct(c.Type); err != nil {
			return nil, err
		}
		f.Served = "native (builtin)"
		f.New = func() (component.Lifecycle, error) { return h.construct(c.Type) }
		return f, nil
	}
	factory, err := engineFactory(src.WasmEngine, wasmCacheDir(src.WasmCacheDir, src.WasmEngine))
	if err != nil {
		return nil, err
	}
	h.wasm = wasmcomp.NewLoader(factory, src.Logger)
	m, err := h.wasm.InspectFile(ctx, src.WasmFile)
	if err != nil {
		return nil, err
	}
	if !m.Provides(c.Type) {
		return nil, fmt.Errorf("%s provides %v, not %s", src.WasmFile, m.Descriptor.Types, c.Type)
	}
	_, served, err := h.constructWasm(m, *c)
	if err != nil {
		return nil, err
	}
	f.Served = describeServed(served)
	f.New = func() (component.Lifecycle, error) {
		impl, _, err := h.constructWasm(m, *c)
		return impl, err
	}
	return f, nil
}
