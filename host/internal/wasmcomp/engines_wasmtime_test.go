//go:build wasmtime

package wasmcomp_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wapr-dev/wapr/host/internal/engine"
	"github.com/wapr-dev/wapr/host/internal/engine/wasmtime"
)

// Builds with -tags wasmtime run every test and benchmark on wasmtime too.
func init() {
	testEngines = append(testEngines, testEngine{name: "wasmtime", factory: func(t testing.TB) engine.Factory {
		f, err := wasmtime.NewFactory(filepath.Join(os.TempDir(), "wapr-test-wasmtime-cache"))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}})
}
