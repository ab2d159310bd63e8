// Package wasmtest builds Wasm guests from source for tests, with the Go
// build cache making repeated builds cheap. Tests never rely on committed
// .wasm files.
package wasmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
	dir   string
)

// Build compiles the main package pkg (an import path or a path relative to
// the module root) to a .wasm with GOOS=wasip1 and -buildmode=c-shared, once
// per test process, and returns the file's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "wapr-wasm-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	out := filepath.Join(dir, strings.NewReplacer("/", "_", ".", "_").Replace(pkg)+".wasm")
	root := moduleRoot(t)
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s for wasip1: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

// Bytes is Build, returning the module's bytes.
func Bytes(t testing.TB, pkg string) []byte {
	b, err := os.ReadFile(Build(t, pkg))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func moduleRoot(t testing.TB) string {
	cmd := exec.Command("go", "env", "GOMOD")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(b)))
}
