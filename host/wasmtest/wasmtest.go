// Package wasmtest builds Wasm guests from source for tests, with the Go
// build cache making repeated builds cheap. Tests never rely on committed
// .wasm files.
//
// Each guest is built once per test process and kept in memory; nothing
// is left in the temporary directory. Build writes the module into the
// calling test's t.TempDir, which the testing package removes when that
// test ends. Build and Bytes are safe for concurrent use.
package wasmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{} // the module of each package built so far
)

// Build compiles the main package pkg (an import path or a path relative to
// the module root) to a .wasm with GOOS=wasip1 and -buildmode=c-shared,
// once per test process, and writes it into a directory of t.TempDir. It
// returns the file's path, which lasts until t ends.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	wasm := module(t, pkg)
	out := filepath.Join(t.TempDir(), fileName(pkg))
	if err := os.WriteFile(out, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// Bytes is Build, returning the module's bytes. The slice is the caller's.
func Bytes(t testing.TB, pkg string) []byte {
	t.Helper()
	return slices.Clone(module(t, pkg))
}

// module returns pkg's module, building it on first use. The slice is
// shared: callers must not modify it.
func module(t testing.TB, pkg string) []byte {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[pkg]; ok {
		return b
	}
	// The build's output goes to a directory of its own, removed as soon
	// as the module is read: a test process that ends (or is killed)
	// leaves nothing behind.
	dir, err := os.MkdirTemp("", "wapr-wasm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, fileName(pkg))
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s for wasip1: %v\n%s", pkg, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	built[pkg] = b
	return b
}

// fileName is the name of pkg's module file.
func fileName(pkg string) string {
	return strings.NewReplacer("/", "_", ".", "_").Replace(pkg) + ".wasm"
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	cmd := exec.Command("go", "env", "GOMOD")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(b)))
}
