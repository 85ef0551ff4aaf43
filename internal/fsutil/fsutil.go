// Package fsutil holds the one way regctl writes files that must never be seen half-written:
// key files, reports, metrics.
package fsutil

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFileAtomic writes data to path with mode through a temporary file in the same directory,
// synced before it is renamed into place; the file never exists with other permissions or partly
// written content.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return WriteAtomic(path, bytes.NewReader(data), mode)
}

// WriteAtomic is WriteFileAtomic for a stream: if reading r fails (a digest mismatch, a broken
// source), nothing is written at path.
func WriteAtomic(path string, r io.Reader, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := io.Copy(tmp, r); err != nil {
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
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir makes a rename in dir durable: without it, a power cut after the rename can bring back
// the directory without the new name although the file's data was synced.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err // EINVAL: a filesystem that cannot sync directories
	}
	return nil
}
