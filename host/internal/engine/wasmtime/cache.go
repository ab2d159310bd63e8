//go:build wasmtime

package wasmtime

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
)

// cache keeps serialized compiled modules (wasmtime "cwasm" artifacts),
// in a directory or, with none, in memory. It is safe for concurrent use.
//
// A file is a magic line, the SHA-256 of the artifact and the artifact.
// Deserializing runs the artifact's machine code, so a file whose digest
// does not match (truncated, corrupted) is ignored and rewritten; an
// artifact of another wasmtime version or CPU fails to deserialize and is
// rewritten as well. Files are written to a temporary name and renamed, so
// a reader never sees a partial file.
type cache struct {
	dir     string
	version string

	mu  sync.Mutex
	mem map[string][]byte // when dir is ""
}

const cacheMagic = "wapr-wasmtime-cwasm-v1\n"

func newCache(dir string) (*cache, error) {
	c := &cache{dir: dir, version: wasmtimeVersion()}
	if dir == "" {
		c.mem = map[string][]byte{}
		return c, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wasmtime compilation cache in %s: %w", dir, err)
	}
	return c, nil
}

// wasmtimeVersion is the wasmtime-go module version linked in, as part of
// the cache key (an artifact only loads into the wasmtime that made it).
func wasmtimeVersion() string {
	const path = "github.com/bytecodealliance/wasmtime-go/v39"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				if d.Replace != nil {
					d = d.Replace
				}
				return d.Path + "@" + d.Version + d.Sum
			}
		}
	}
	return path
}

// key names the artifact of wasm compiled by this wasmtime for this
// platform with the given code-affecting settings.
func (c *cache) key(wasm []byte, interruptible bool) string {
	h := sha256.New()
	h.Write(wasm)
	fmt.Fprintf(h, "\x00%s\x00%s/%s\x00epoch=%t", c.version, runtime.GOOS, runtime.GOARCH, interruptible)
	return hex.EncodeToString(h.Sum(nil))
}

func (c *cache) path(key string) string { return filepath.Join(c.dir, key+".cwasm") }

// load returns the artifact stored under key, or nil.
func (c *cache) load(key string) []byte {
	if c.dir == "" {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.mem[key]
	}
	b, err := os.ReadFile(c.path(key))
	if err != nil || len(b) < len(cacheMagic)+sha256.Size || string(b[:len(cacheMagic)]) != cacheMagic {
		return nil
	}
	b = b[len(cacheMagic):]
	sum, art := b[:sha256.Size], b[sha256.Size:]
	if got := sha256.Sum256(art); !bytes.Equal(got[:], sum) {
		return nil
	}
	return art
}

// store saves art under key.
func (c *cache) store(key string, art []byte) error {
	if c.dir == "" {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.mem[key] = art
		return nil
	}
	f, err := os.CreateTemp(c.dir, ".tmp-*.cwasm")
	if err != nil {
		return err
	}
	sum := sha256.Sum256(art)
	_, err = f.WriteString(cacheMagic)
	if err == nil {
		_, err = f.Write(sum[:])
	}
	if err == nil {
		_, err = f.Write(art)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.path(key))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// reset empties the in-memory cache.
func (c *cache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem != nil {
		c.mem = map[string][]byte{}
	}
}
