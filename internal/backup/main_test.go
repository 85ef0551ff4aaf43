package backup_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/backup"
	"github.com/regctl-dev/regctl/internal/registry"
)

// TestMain doubles as the child process of the kill -9 test: with REGCTL_BACKUP_CHILD set, the test
// binary runs one backup and exits (unless it is killed first).
func TestMain(m *testing.M) {
	if host := os.Getenv("REGCTL_BACKUP_CHILD"); host != "" {
		os.Exit(child(host, os.Getenv("REGCTL_BACKUP_DEST")))
	}
	os.Exit(m.Run())
}

func child(host, dest string) int {
	ctx := context.Background()
	reg, err := registry.NewResolver(nil, registry.Options{}).Registry(host)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := backup.Open(ctx, dest, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := backup.Backup(ctx, reg, s, backup.Options{Jobs: 1, Now: func() time.Time { return time.Now() }}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
