package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Starter is the commented file `regctl config init` writes; it is also tested to load cleanly.
//
//go:embed starter.yaml
var Starter []byte

// WriteStarter writes Starter to path, refusing to overwrite an existing file unless force is set.
func WriteStarter(path string, force bool) error {
	if !force {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s already exists; use --force to overwrite it", path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, Starter, 0o644)
}
