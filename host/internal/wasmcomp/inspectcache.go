package wasmcomp

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/internal/engine"
)

// The inspection cache keeps what inspecting a module found (its imports and
// the descriptor wapr_info returned) in a file named after the module's
// digest, the engine and the ABI marker, so that a restart does not compile
// the module and run a throwaway instance again only to read them: a Go
// guest costs tens of milliseconds to decode and validate and as much again
// to instantiate. The component that serves the module still compiles,
// instantiates and initialises it, so a module that no longer loads fails
// there as it would have failed inspection.
//
// A file that cannot be read or decoded is a miss; writing one is best
// effort (a failure is logged, never fatal).

// inspected is the content of a cache file.
type inspected struct {
	Descriptor []byte          `json:"descriptor"` // as wapr_info returned it
	Imports    []engine.Import `json:"imports"`
}

// SetInspectionCache keeps inspections in dir (created when first written);
// "" turns the cache off (the default).
func (l *Loader) SetInspectionCache(dir string) { l.inspectDir = dir }

// inspectionPath is the cache file of the module with digest sum (hex).
func (l *Loader) inspectionPath(sum string) string {
	if l.inspectDir == "" {
		return ""
	}
	return filepath.Join(l.inspectDir, fmt.Sprintf("%s.%s.%s.json", sum, l.factory.Name(), abi.ExportMarker))
}

// cachedInspection fills m from the cache; false on a miss.
func (l *Loader) cachedInspection(sum string, m *Module) bool {
	path := l.inspectionPath(sum)
	if path == "" {
		return false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var c inspected
	if err := json.Unmarshal(b, &c); err != nil {
		return false
	}
	var d abi.Descriptor
	if err := d.Decode(c.Descriptor); err != nil || len(d.Types) == 0 {
		return false
	}
	if err := checkImports(c.Imports); err != nil {
		return false
	}
	m.Descriptor, m.Imports, m.ImportModules = d, c.Imports, importModules(c.Imports)
	return true
}

// storeInspection writes the cache file of the module with digest sum.
func (l *Loader) storeInspection(sum string, descriptor []byte, imports []engine.Import) {
	path := l.inspectionPath(sum)
	if path == "" {
		return
	}
	b, err := json.Marshal(inspected{Descriptor: descriptor, Imports: imports})
	if err == nil {
		err = engine.WriteCacheFile(path, b)
	}
	if err != nil {
		l.log.Warn("could not cache the inspection of a wasm module", "file", path, "error", err)
	}
}
