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
	if err := WriteAtomicDirUnsynced(path, r, -1, mode); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// copyBuffer sizes the copy buffer to what is written: a large blob goes in 256 KiB writes instead
// of io.Copy's 32 KiB, and a small file does not pay for (nor the collector sweep) a large buffer.
func copyBuffer(size int64) []byte {
	switch {
	case size < 0:
		return make([]byte, 32<<10)
	case size < 4<<10:
		return make([]byte, 4<<10)
	case size > 256<<10:
		return make([]byte, 256<<10)
	}
	return make([]byte, size+1) // +1: the read that sees the end needs room
}

// WriteAtomicDirUnsynced is WriteAtomic without syncing the directory: the content is synced before
// the rename, so the name never shows a partial file, but the name itself is durable only once the
// caller has synced the directory (SyncDir), which it must do before writing anything that refers
// to the file. Many files in one directory then cost one directory sync. size is what r holds, if
// known (-1 if not); it only sizes the copy buffer.
func WriteAtomicDirUnsynced(path string, r io.Reader, size int64, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	// The wrapper hides *os.File's ReadFrom, which would pick its own 32 KiB buffer.
	if _, err := io.CopyBuffer(struct{ io.Writer }{tmp}, r, copyBuffer(size)); err != nil {
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
