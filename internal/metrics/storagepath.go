package metrics

import (
	"fmt"
	"strings"
)

// ParseStoragePaths reads --storage-path values: NAME=PATH for the registry named NAME (as given
// on the command line), or a bare PATH when exactly one registry is collected. It returns the path
// for each registry that has one. A value whose text before "=" is no registry's name is a path
// (paths may contain "="). Errors name the value.
func ParseStoragePaths(values, registries []string) (map[string]string, error) {
	known := map[string]bool{}
	for _, r := range registries {
		known[r] = true
	}
	out := map[string]string{}
	for _, v := range values {
		name, path, ok := strings.Cut(v, "=")
		if !ok || !known[name] {
			if len(registries) != 1 {
				return nil, fmt.Errorf("--storage-path %q: with more than one registry, write REGISTRY=PATH (REGISTRY as given: %s)", v, strings.Join(registries, ", "))
			}
			name, path = registries[0], v
		}
		if path == "" {
			return nil, fmt.Errorf("--storage-path %q: the path is empty", v)
		}
		if strings.ContainsRune(path, 0) {
			return nil, fmt.Errorf("--storage-path %q: the path holds a NUL byte", v)
		}
		if prev, dup := out[name]; dup && prev != path {
			return nil, fmt.Errorf("--storage-path %q: %s already has the path %s", v, name, prev)
		}
		out[name] = path
	}
	return out, nil
}
