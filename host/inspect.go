package host

import (
	"context"
	"log/slog"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
)

// WasmModule describes a Wasm component module: what `wapr inspect` prints.
type WasmModule struct {
	Path          string         `json:"path"`
	Digest        string         `json:"digest"`
	ABIVersion    string         `json:"abiVersion"`
	Descriptor    abi.Descriptor `json:"descriptor"`
	ImportModules []string       `json:"importModules"`
	Imports       []string       `json:"imports"` // module.function
}

// InspectWasm compiles the module at path (without caching), checks that it
// is a wapr component of a supported ABI, and reads its descriptor.
func InspectWasm(ctx context.Context, path string, log *slog.Logger) (*WasmModule, error) {
	factory, err := engineFactory("", "")
	if err != nil {
		return nil, err
	}
	if c, ok := factory.(interface{ Close(context.Context) error }); ok {
		defer c.Close(ctx)
	}
	m, err := wasmcomp.NewLoader(factory, log).InspectFile(ctx, path)
	if err != nil {
		return nil, err
	}
	out := &WasmModule{Path: m.Path, Digest: m.Digest, ABIVersion: m.ABIVersion(), Descriptor: m.Descriptor, ImportModules: m.ImportModules}
	for _, imp := range m.Imports {
		out.Imports = append(out.Imports, imp.Module+"."+imp.Name)
	}
	return out, nil
}
