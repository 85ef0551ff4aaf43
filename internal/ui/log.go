package ui

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// NewLogger builds the slog logger for --log-format and -v. Logs always go to errOut, never stdout.
func NewLogger(errOut io.Writer, format string, verbosity int) (*slog.Logger, error) {
	level := slog.LevelWarn
	switch {
	case verbosity == 1:
		level = slog.LevelInfo
	case verbosity >= 2:
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(errOut, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(errOut, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: must be text or json", format)
}
