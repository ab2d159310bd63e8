package wasmtest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// guest is a small main package that builds for wasip1.
const guest = "./examples/state-memory-wasm"

// TestBuildLeavesNothing: a guest is built once per process; every Build
// writes it into the test's own temporary directory, and nothing is left
// in the process's temporary directory.
func TestBuildLeavesNothing(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where os.MkdirTemp puts the build's output

	var first, second string
	t.Run("first", func(t *testing.T) {
		first = Build(t, guest)
		assertModule(t, first)
	})
	t.Run("second", func(t *testing.T) {
		second = Build(t, guest)
		assertModule(t, second)
	})
	if first == second {
		t.Errorf("both tests got %s", first)
	}
	for _, p := range []string{first, second} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s outlived its test: %v", p, err)
		}
	}
	b1, b2 := Bytes(t, guest), Bytes(t, guest)
	if !bytes.Equal(b1, b2) {
		t.Error("Bytes differ between calls")
	}
	b1[0] ^= 0xff
	if bytes.Equal(b1, Bytes(t, guest)) {
		t.Error("Bytes returned a shared slice")
	}
	if len(built) != 1 {
		t.Errorf("%d builds cached, want 1", len(built))
	}
	left, err := filepath.Glob(filepath.Join(tmp, "wapr-wasm-*"))
	if err != nil || len(left) > 0 {
		t.Errorf("left in the temporary directory: %v (%v)", left, err)
	}
}

func assertModule(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x00asm")) {
		t.Fatalf("%s is not a Wasm module", path)
	}
}
