// Package benchproc runs a command as a process for the benchmarks that compare regctl with peer
// tools, and reports its wall time and peak RSS.
package benchproc

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Result is one process run.
type Result struct {
	Wall     time.Duration
	MaxRSSMB float64 // 0 without GNU time: wait4's figure would be wrong (see Run)
}

const marker = "regctl-bench-maxrss="

// Run runs argv in dir with env (added to this process's environment). Peak RSS comes from GNU
// time's %M (Debian's time package); without it there is none, because wait4's own figure is wrong
// for a child Go starts: Go starts children with vfork and Linux carries the parent's high-water
// mark across the exec, so every tool would report the benchmark binary's size.
func Run(dir string, env []string, argv ...string) (Result, error) {
	timeBin, _ := exec.LookPath("time")
	full := argv
	if timeBin != "" {
		full = append([]string{timeBin, "-f", marker + "%M"}, argv...)
	}
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := Result{Wall: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	if i := strings.LastIndex(string(out), marker); i >= 0 {
		var kb float64
		fmt.Sscanf(string(out[i:]), marker+"%f", &kb)
		r.MaxRSSMB = kb / 1024
	}
	return r, nil
}

// RunAll runs the commands one after another (a tool that takes one repository per process):
// their total wall time and the largest peak RSS.
func RunAll(dir string, env []string, cmds [][]string) (Result, error) {
	var total Result
	for _, argv := range cmds {
		r, err := Run(dir, env, argv...)
		if err != nil {
			return total, err
		}
		total.Wall += r.Wall
		total.MaxRSSMB = max(total.MaxRSSMB, r.MaxRSSMB)
	}
	return total, nil
}

// Tool is the path of a peer tool: the environment variable env names it, else name on PATH, else "".
func Tool(env, name string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, _ := exec.LookPath(name)
	return p
}
