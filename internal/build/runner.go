package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// Cmd is one external command.
type Cmd struct {
	Dir  string
	Env  []string // added to the environment
	Argv []string
	// Mask lists arguments shown as KEY=*** by String (user build args may carry tokens).
	Mask []string
}

// String renders the command for --dry-run and logs, shell-quoted.
func (c Cmd) String() string {
	parts := make([]string, len(c.Argv))
	for i, a := range c.Argv {
		masked := false
		for _, m := range c.Mask {
			if a == m {
				k, _, _ := strings.Cut(a, "=")
				a, masked = k+"=***", true
			}
		}
		if !masked && (a == "" || strings.ContainsAny(a, " \t\"'$`\\|&;<>()*?[]{}")) {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

// Runner runs commands; tests replace it to check the exact argv.
type Runner interface {
	Run(ctx context.Context, c Cmd) (stdout []byte, err error)
}

// ExecRunner runs real processes, streaming their stderr (build progress) to Progress.
type ExecRunner struct {
	Progress io.Writer
}

func (r ExecRunner) Run(ctx context.Context, c Cmd) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	var out, errBuf bytes.Buffer
	cmd.Stdout = &out
	if r.Progress != nil {
		cmd.Stderr = io.MultiWriter(r.Progress, &errBuf)
	} else {
		cmd.Stderr = &errBuf
	}
	if err := cmd.Run(); err != nil {
		tail := strings.TrimSpace(errBuf.String())
		if len(tail) > 2000 {
			tail = "…" + tail[len(tail)-2000:]
		}
		return out.Bytes(), fmt.Errorf("%s: %w\n%s", c.Argv[0]+" "+strings.Join(c.Argv[1:2], " "), err, tail)
	}
	return out.Bytes(), nil
}
