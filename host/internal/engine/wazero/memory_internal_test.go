package wazero

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/wapr-dev/wapr/host/internal/engine"
	"github.com/wapr-dev/wapr/host/internal/engine/enginetest"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

// A linear memory grows in place up to its maximum, and is unmapped by
// Free, but never under a call in progress; a freed memory admits no call.
func TestLinearMemory(t *testing.T) {
	const max = 4 << 16
	m := newLinearMemory(1<<16, max)
	if m.reserved == nil {
		t.Skip("no address space reservation on this system")
	}
	b := m.Reallocate(1 << 16)
	b[0], b[len(b)-1] = 1, 2
	base := unsafe.SliceData(b)
	b = m.Reallocate(3 << 16)
	if len(b) != 3<<16 || cap(b) != 3<<16 || unsafe.SliceData(b) != base || b[0] != 1 || b[1<<16-1] != 2 {
		t.Fatalf("grown memory: len %d cap %d, moved %v", len(b), cap(b), unsafe.SliceData(b) != base)
	}
	b[len(b)-1] = 3
	if m.Reallocate(max+1<<16) != nil {
		t.Fatal("grew past the maximum")
	}

	if !m.enter() {
		t.Fatal("enter refused before Free")
	}
	m.Free() // as closing the engine under a running call does
	if m.released.Load() {
		t.Fatal("unmapped under a call in progress")
	}
	b[0] = 4 // still mapped
	m.leave()
	if !m.released.Load() {
		t.Fatal("not unmapped once the call left")
	}
	if m.enter() {
		t.Fatal("a call entered a freed memory")
	}
	m.Free() // twice is a no-op
}

// Closing an instance unmaps its memory; a call on it then fails instead
// of running guest code on unmapped memory.
func TestInstanceMemoryFreedOnClose(t *testing.T) {
	f, err := NewFactory(filepath.Join(os.TempDir(), "wapr-test-wazero-cache"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eng, err := f.New(ctx, engine.Config{MemoryLimitPages: 1024, Interruptible: true, HostModules: enginetest.HostStubs()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	m, err := eng.Compile(ctx, wasmtest.Bytes(t, enginetest.MisbehavePkg))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, nil, engine.InstanceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	lin := inst.(*instance).lin
	if lin == nil || lin.max != 1024<<16 {
		t.Fatalf("the instance's memory is not ours, or not capped at the limit: %+v", lin)
	}
	alloc := inst.Func("bench_alloc")
	if _, err := inst.Func("_initialize").Call(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := alloc.Call(ctx, 8<<20); err != nil {
		t.Fatal(err)
	}
	if err := inst.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if lin.reserved != nil && !lin.released.Load() {
		t.Fatal("the memory is still mapped after Close")
	}
	if _, err := alloc.Call(ctx, 1); err == nil {
		t.Fatal("a call on a closed instance ran")
	}
}
