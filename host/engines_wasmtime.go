//go:build wasmtime

package host

import (
	"github.com/wapr-dev/wapr/host/internal/engine"
	wasmtimeengine "github.com/wapr-dev/wapr/host/internal/engine/wasmtime"
)

func init() {
	newWasmtimeFactory = func(cacheDir string) (engine.Factory, error) {
		f, err := wasmtimeengine.NewFactory(cacheDir)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
}
