#!/usr/bin/env bash
# Sets up this machine if needed, then runs every check and test Lattice has:
# formatting, clippy (warnings are errors) and the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
lattice_setup test

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace"
cargo test --workspace --locked

step "all checks passed"
