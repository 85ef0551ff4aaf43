// Command regctl manages private container registries: repositories, lifecycle policies, scans,
// signatures and backups, on AWS ECR, Harbor and any OCI registry.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/regctl-dev/regctl/internal/ui"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[0], os.Args[1:], ui.System(), os.Environ())
	stop()
	os.Exit(code)
}
