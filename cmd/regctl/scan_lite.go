//go:build regctl_lite

package main

// The light build: no trivy, so no scanner of its own; the scan commands run in regctl-scan.

func builtInScanner() scanner { return nil }

func prepareLibraries() {}
