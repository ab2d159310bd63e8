package wasmcomp_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/internal/wasmcomp"
	"github.com/wapr-dev/wapr/host/wasmtest"
)

// TestModuleBytesReleased: once a component of a module read from a file
// has compiled it, the module no longer keeps its bytes; a second component
// of the module reads the file again, and is refused if the file no longer
// holds the module that was inspected.
func TestModuleBytesReleased(t *testing.T) {
	ctx := context.Background()
	for _, e := range testEngines {
		t.Run(e.name, func(t *testing.T) {
			l := newLoader(t, e)
			path := filepath.Join(t.TempDir(), "misbehave.wasm")
			if err := os.WriteFile(path, wasmtest.Bytes(t, misbehavePkg), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := l.InspectFile(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			if m.Released() {
				t.Fatal("released before any component compiled the module")
			}
			start := func() error {
				s, err := l.NewStateStore(m, "mis", "state.misbehave", map[string]string{wasmcomp.AnnotationPoolSize: "1"})
				if err != nil {
					return err
				}
				if err := s.Init(ctx, component.Metadata{Properties: map[string]string{"target": "127.0.0.1:1"}}); err != nil {
					return err
				}
				return s.Close(ctx)
			}
			if err := start(); err != nil {
				t.Fatal(err)
			}
			if !m.Released() {
				t.Fatal("the module keeps its bytes after a component compiled it")
			}
			if err := start(); err != nil {
				t.Fatalf("a second component, reading the file again: %v", err)
			}
			if err := os.WriteFile(path, wasmtest.Bytes(t, hangstorePkg), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := start(); err == nil || !strings.Contains(err.Error(), "changed since it was inspected") {
				t.Fatalf("a component of a module whose file changed: %v, want it refused", err)
			}
		})
	}
}
