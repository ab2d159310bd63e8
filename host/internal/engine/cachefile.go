package engine

import (
	"errors"
	"os"
	"path/filepath"
)

// WriteCacheFile writes the parts to path, one after the other, creating its
// folder, through a temporary file and a rename, so that a reader of a cache
// never sees part of a file.
func WriteCacheFile(path string, parts ...[]byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	var werr error
	for _, b := range parts {
		if werr == nil {
			_, werr = tmp.Write(b)
		}
	}
	if err := errors.Join(werr, tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
