package wazero_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/wapr-dev/wapr/host/internal/engine"
	"github.com/wapr-dev/wapr/host/internal/engine/enginetest"
	"github.com/wapr-dev/wapr/host/internal/engine/wazero"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

func newInstance(b *testing.B, interruptible bool) engine.Instance {
	f, err := wazero.NewFactory(filepath.Join(os.TempDir(), "wapr-test-wazero-cache"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	eng, err := f.New(ctx, engine.Config{Interruptible: interruptible, HostModules: enginetest.HostStubs()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close(ctx) })
	m, err := eng.Compile(ctx, wasmtest.Bytes(b, enginetest.MisbehavePkg))
	if err != nil {
		b.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, nil, engine.InstanceConfig{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := inst.Func("_initialize").Call(ctx); err != nil {
		b.Fatal(err)
	}
	return inst
}

// BenchmarkExportCall is the bare cost of calling a Go guest's export.
func BenchmarkExportCall(b *testing.B) {
	for _, intr := range []bool{false, true} {
		b.Run(map[bool]string{false: "trusted", true: "interruptible"}[intr], func(b *testing.B) {
			inst := newInstance(b, intr)
			noop := inst.Func("bench_noop")
			alloc := inst.Func("bench_alloc")
			ctx := context.Background()
			b.Run("noop", func(b *testing.B) {
				for b.Loop() {
					if _, err := noop.Call(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("alloc1KiB", func(b *testing.B) {
				for b.Loop() {
					if _, err := alloc.Call(ctx, 1024); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
