#!/usr/bin/env bash
# regctl's main job on an embedded default, no cloud account needed: run the CNCF distribution
# registry in-process, push sample images, list them, show what lifecycle-relevant data regctl sees,
# then stop the registry and collect garbage. Set REGCTL_DEMO_ADDR to use another port.
set -euo pipefail
cd "$(dirname "$0")/.."
regctl=./bin/regctl
addr=${REGCTL_DEMO_ADDR:-127.0.0.1:5000}
root=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$root"' EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "Starting the embedded registry on $addr (storage $root/registry)"
$regctl registry serve --addr "$addr" --root "$root/registry" &
pid=$!
for _ in $(seq 50); do # up to 5 s
  if $regctl repo list "$addr" >/dev/null 2>&1; then break; fi
  sleep 0.1
done

step $regctl registry seed "$addr/game-server"
step $regctl registry seed "$addr/game-server/tools" -o json >/dev/null
step $regctl repo list "$addr"
step $regctl repo images "$addr/game-server"
step $regctl repo images "$addr/game-server" --all
step $regctl repo create "$addr/game-server" "$addr/game-server/grafana"

kill -INT "$pid"; wait "$pid" || true
step $regctl registry gc --root "$root/registry" --dry-run
echo
echo "Done. The registry was stopped and its storage removed."
