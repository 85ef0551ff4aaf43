//go:build linux || darwin || freebsd

package metrics

import (
	"fmt"
	"syscall"
)

// Statfs reports the filesystem holding path.
func Statfs(path string) (Filesystem, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return Filesystem{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize) //nolint:unconvert // int64, uint32 or uint64 by system
	fs := Filesystem{Path: path, SizeBytes: uint64(st.Blocks) * bs, FreeBytes: uint64(st.Bavail) * bs}
	if free := uint64(st.Bfree) * bs; free <= fs.SizeBytes {
		fs.UsedBytes = fs.SizeBytes - free
	}
	return fs, nil
}
