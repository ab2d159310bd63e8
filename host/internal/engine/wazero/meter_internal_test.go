package wazero

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
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

// With a cache folder the metered copy is written there, and another
// factory on the folder (a restart) takes it from there rather than
// rewriting the module; a file that does not match its digest is rewritten.
func TestMeteredCopyCached(t *testing.T) {
	wasm := wasmtest.Bytes(t, enginetest.MisbehavePkg)
	want, err := meter.Instrument(wasm, refuelEvery)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	factory := func() *Factory {
		f, err := NewFactory(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close(context.Background()) })
		return f
	}
	if got, err := factory().meter(wasm); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("first rewrite: %d bytes, %v", len(got), err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, meteredDir, "*.wasm"))
	if len(files) != 1 {
		t.Fatalf("cached copies %v, want one", files)
	}
	if got, ok := readMetered(files[0]); !ok || !bytes.Equal(got, want) {
		t.Fatalf("the cached copy is not the rewrite (%d bytes, %v)", len(got), ok)
	}

	// A stand-in with a good checksum is taken as it is: the cache is read.
	standIn := []byte("\x00asm\x01\x00\x00\x00")
	sum := binary.BigEndian.AppendUint32(nil, crc32.Checksum(standIn, castagnoli))
	if err := os.WriteFile(files[0], append(sum, standIn...), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := factory().meter(wasm); err != nil || !bytes.Equal(got, standIn) {
		t.Fatalf("from the cache: %q, %v", got, err)
	}

	// A damaged file is a miss: rewritten.
	if err := os.WriteFile(files[0], append(sum, "\x00asm\x02"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := factory().meter(wasm); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after damage: %d bytes, %v", len(got), err)
	}
	if got, ok := readMetered(files[0]); !ok || !bytes.Equal(got, want) {
		t.Errorf("the damaged copy was not replaced")
	}

	// A factory with a folder keeps no copy in memory: it reads the
	// folder's again, and rewrites the module when the file is gone.
	f := factory()
	for i, remove := range []bool{false, false, true} {
		if remove {
			if err := os.Remove(files[0]); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := f.meter(wasm); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("call %d on one factory: %d bytes, %v", i, len(got), err)
		}
		for _, r := range f.metered {
			if r.wasm != nil {
				t.Fatalf("call %d: the factory keeps the %d bytes of a copy its folder holds", i, len(r.wasm))
			}
		}
	}
	if got, ok := readMetered(files[0]); !ok || !bytes.Equal(got, want) {
		t.Errorf("the removed copy was not written again")
	}
}
