#!/usr/bin/env bash
# Sets up this machine if needed, builds `lattice` (release) and runs it with the given
# arguments. With no arguments it runs the headless node (`lattice node`) from ./.env.
#   ./scripts/run.sh                      # the node, until Ctrl-C
#   ./scripts/run.sh keygen
#   ./scripts/run.sh put '{"hello": "world"}' --url http://127.0.0.1:8000
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
lattice_setup
cargo build --release --locked -q -p lattice-node --bin lattice
if [ $# -eq 0 ]; then set -- node; fi
exec ./target/release/lattice "$@"
