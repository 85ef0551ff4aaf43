// Package ui holds the I/O streams every command writes through, and the renderers for tables, JSON
// and YAML. Nothing here writes to the process's real stdout unless main hands it os.Stdout.
package ui

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams is what a command reads from and writes to. Results go to Out, logs and progress to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	// InTTY, OutTTY and ErrTTY say whether each stream is a terminal; colour, tables with borders and
	// progress bars are only drawn on a terminal.
	InTTY, OutTTY, ErrTTY bool
	// NoColor is set by --no-color or NO_COLOR.
	NoColor bool
}

// System returns the process's streams with terminal detection. Only main calls it.
func System() *IOStreams {
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		InTTY:   isTerminal(os.Stdin),
		OutTTY:  isTerminal(os.Stdout),
		ErrTTY:  isTerminal(os.Stderr),
		NoColor: os.Getenv("NO_COLOR") != "",
	}
}

// Test returns streams backed by buffers (no terminal), and the buffers, for tests.
func Test() (streams *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// ColorOut reports whether Out may carry ANSI colour.
func (s *IOStreams) ColorOut() bool { return s.OutTTY && !s.NoColor }

// ColorErr reports whether ErrOut may carry ANSI colour.
func (s *IOStreams) ColorErr() bool { return s.ErrTTY && !s.NoColor }

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
