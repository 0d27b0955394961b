#!/usr/bin/env bash
# Sets up this machine if needed, then:
#   ./scripts/run.sh                 builds and opens the Lattice desktop app
#   ./scripts/run.sh node            runs the headless node (lattice node) from ./.env
#   ./scripts/run.sh <args...>       runs the `lattice` CLI with these arguments,
#                                    e.g. demo --nodes 5 --fast --script, keygen, status
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
lattice_setup

if [ $# -gt 0 ]; then
  # A node (or demo) serves the dashboard to browsers: build it first.
  case "$1" in node|demo) npm --prefix ui run build --silent ;; esac
  cargo build --release --locked -q -p lattice-node --bin lattice
  exec ./target/release/lattice "$@"
fi

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "run: no display to open the app on; for the headless node run: ./scripts/run.sh node" >&2
  exit 2
fi
npm --prefix ui run build --silent
cargo build --release --locked -q -p lattice-app --features custom-protocol
exec ./target/release/lattice-app
