package host

import (
	"fmt"

	"github.com/wapr-dev/wapr/host/internal/engine"
	wazeroengine "github.com/wapr-dev/wapr/host/internal/engine/wazero"
)

// engineFactory returns the Wasm engine factory called name, caching
// compiled modules in cacheDir ("" keeps them in memory). The engines keep
// incompatible caches: give each its own folder. "" and "wazero" are the
// default, pure-Go engine; "wasmtime" exists only in binaries built with
// -tags wasmtime (cgo).
func engineFactory(name, cacheDir string) (engine.Factory, error) {
	switch name {
	case "", "wazero":
		f, err := wazeroengine.NewFactory(cacheDir)
		if err != nil {
			return nil, err
		}
		return f, nil
	case "wasmtime":
		if newWasmtimeFactory == nil {
			return nil, fmt.Errorf("wasm engine %q is not built into this binary; rebuild with: go build -tags wasmtime ./cmd/wapr", name)
		}
		return newWasmtimeFactory(cacheDir)
	}
	return nil, fmt.Errorf("unknown wasm engine %q (known: wazero, wasmtime)", name)
}

// newWasmtimeFactory is set by engines_wasmtime.go in builds with -tags
// wasmtime: the choice is made when the binary is built, so it is not
// running state (the one package variable filled at init).
var newWasmtimeFactory func(cacheDir string) (engine.Factory, error)
