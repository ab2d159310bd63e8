package wazero

import (
	"context"
	"testing"

	"github.com/wapr-dev/wapr/host/internal/engine"
	"github.com/wapr-dev/wapr/host/internal/engine/enginetest"
	"github.com/wapr-dev/wapr/host/internal/engine/meter"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

// An interruptible engine runs a Go guest metered on its main runtime and
// keeps the meter's import out of the module's reported imports; a module
// the meter refuses runs on the strict runtime instead.
func TestInterruptibleEngineMeters(t *testing.T) {
	ctx := context.Background()
	f, err := NewFactory("")
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.New(ctx, engine.Config{Interruptible: true, HostModules: enginetest.HostStubs()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	eng := e.(*Engine)

	m, err := eng.Compile(ctx, wasmtest.Bytes(t, enginetest.MisbehavePkg))
	if err != nil {
		t.Fatal(err)
	}
	if m.(*module).rt != eng.rt || eng.strict != nil {
		t.Fatal("the Go guest was not metered")
	}
	// A second compile of the same bytes (another component of the same
	// module) reuses the rewrite.
	if _, err := eng.Compile(ctx, wasmtest.Bytes(t, enginetest.MisbehavePkg)); err != nil {
		t.Fatal(err)
	}
	if len(f.metered) != 1 {
		t.Fatalf("%d rewrites remembered after compiling one module twice, want 1", len(f.metered))
	}
	for _, imp := range m.Imports() {
		if imp.Module == meter.Module {
			t.Fatalf("Imports reports the meter's import %v", imp)
		}
	}

	// No type section: nothing the meter can add its import to.
	empty, err := eng.Compile(ctx, []byte("\x00asm\x01\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if eng.strict == nil || empty.(*module).rt != eng.strict {
		t.Fatal("an unmeterable module did not go to the strict runtime")
	}
	if _, err := empty.Instantiate(ctx, nil, engine.InstanceConfig{}); err != nil {
		t.Fatal(err)
	}
}
