// Package fsutil holds the one way regctl writes files that must never be seen half-written:
// key files, reports, metrics.
package fsutil

import (
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to path with mode through a temporary file in the same directory,
// synced before it is renamed into place; the file never exists with other permissions or partly
// written content.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
