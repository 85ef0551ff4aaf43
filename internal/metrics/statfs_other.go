//go:build !(linux || darwin || freebsd)

package metrics

// Statfs reports the filesystem holding path; not on this system.
func Statfs(path string) (Filesystem, error) {
	return Filesystem{Path: path}, ErrUnsupported
}
