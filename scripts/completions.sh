#!/usr/bin/env bash
# Writes regctl's shell completion scripts (bash, zsh, fish) into completions/.
# Used by goreleaser's before hook; runs the CLI from source, so it needs the same
# GOEXPERIMENT as every other go command in this project.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=jsonv2 CGO_ENABLED=0
rm -rf completions
mkdir -p completions
for sh in bash zsh fish; do
  go run ./cmd/regctl completion "$sh" >"completions/regctl.$sh"
done
