// Command harbor-emulator serves regctl's Harbor emulator (internal/harbor/harbortest) for docs,
// demos and anyone testing their own pipeline against a Harbor-shaped API:
//
//	go run ./internal/harbor/harbortest/cmd/harbor-emulator --addr 127.0.0.1:8080
//
// Its first line on stdout is JSON: {"url":…,"username":…,"password":…} (the admin's). It serves
// until SIGTERM or SIGINT. With --spec, every API request and answer is checked against Harbor's
// OpenAPI document and violations are logged on stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("harbor-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (127.0.0.1:PORT; port 0 picks a free one)")
	password := fs.String("password", "", "the admin's password (default: a random one, printed)")
	root := fs.String("root", "", "store blobs in this directory (default: in memory)")
	spec := fs.String("spec", "", "validate every API request and answer against this harbor-v2.0-swagger.yaml")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "harbor-emulator: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	emu, err := harbortest.New(ctx, harbortest.Options{AdminPassword: *password, Root: *root, Spec: *spec})
	if err != nil {
		fmt.Fprintf(stderr, "harbor-emulator: %v\n", err)
		return 1
	}
	defer emu.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "harbor-emulator: %v\n", err)
		return 1
	}
	url := "http://" + ln.Addr().String()
	emu.SetExternalURL(url)
	line, _ := json.Marshal(map[string]string{"url": url, "username": harbortest.Admin, "password": emu.AdminPassword()})
	fmt.Fprintf(stdout, "%s\n", line)
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "harbor-emulator: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "harbor-emulator: %v\n", err)
		return 1
	}
	code := 0
	for _, v := range emu.Violations() {
		fmt.Fprintf(stderr, "harbor-emulator: spec violation: %s\n", v)
		code = 1
	}
	return code
}
