#!/usr/bin/env bash
# Sets up this machine if needed, builds the `lattice` CLI (release) and runs it with
# the given arguments. With no arguments it prints the help.
#   ./scripts/run.sh keygen
#   ./scripts/run.sh put '{"hello": "world"}'
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
lattice_setup
cargo build --release --locked -q -p lattice-node --bin lattice
if [ $# -eq 0 ]; then set -- --help; fi
exec ./target/release/lattice "$@"
