package wasmcomp_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/wapr-dev/wapr/host/internal/engine"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

// countingFactory counts the modules its engines compile.
type countingFactory struct {
	engine.Factory
	compiles *atomic.Int64
}

func (f countingFactory) New(ctx context.Context, cfg engine.Config) (engine.Engine, error) {
	e, err := f.Factory.New(ctx, cfg)
	return countingEngine{e, f.compiles}, err
}

type countingEngine struct {
	engine.Engine
	compiles *atomic.Int64
}

func (e countingEngine) Compile(ctx context.Context, wasm []byte) (engine.Module, error) {
	e.compiles.Add(1)
	return e.Engine.Compile(ctx, wasm)
}

// A second inspection of a module, by another loader on the same cache
// folder (a restart), reads what the first found without compiling it; a
// damaged cache file is a miss, inspected again and rewritten.
func TestInspectionCache(t *testing.T) { perEngine(t, testInspectionCache) }

func testInspectionCache(t *testing.T, e testEngine) {
	wasm, err := os.ReadFile(wasmtest.Build(t, misbehavePkg))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var compiles atomic.Int64
	loader := func() *wasmcomp.Loader {
		l := wasmcomp.NewLoader(countingFactory{e.factory(t), &compiles}, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
		l.SetInspectionCache(dir)
		return l
	}
	first, err := loader().Inspect(t.Context(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	if compiles.Load() != 1 {
		t.Fatalf("the first inspection compiled %d times, want 1", compiles.Load())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files %v, want one", files)
	}

	second, err := loader().Inspect(t.Context(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	if compiles.Load() != 1 {
		t.Errorf("the second inspection compiled: %d compiles in all", compiles.Load())
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("from the cache: %+v\nwant %+v", second, first)
	}

	if err := os.WriteFile(files[0], []byte(`{"descriptor":"AAAA"`), 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := loader().Inspect(t.Context(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	if compiles.Load() != 2 || !reflect.DeepEqual(first, third) {
		t.Errorf("after damage: %d compiles, module %+v", compiles.Load(), third)
	}
	if _, err := loader().Inspect(t.Context(), wasm); err != nil || compiles.Load() != 2 {
		t.Errorf("the rewritten file was not used: %d compiles, %v", compiles.Load(), err)
	}
}
