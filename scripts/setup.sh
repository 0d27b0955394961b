#!/usr/bin/env bash
# Installs what building and testing Lattice needs, skipping whatever is already there.
# Sourced by scripts/run.sh and scripts/test.sh; safe to run on its own.
set -euo pipefail

# Debian/Ubuntu packages the build needs (a C compiler for the bundled SQLite).
LATTICE_APT_PACKAGES=(build-essential pkg-config ca-certificates curl)

lattice_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

lattice_setup_packages() {
  if ! command -v dpkg >/dev/null 2>&1; then
    echo "setup: not a Debian/Ubuntu system; make sure these are installed: ${LATTICE_APT_PACKAGES[*]}" >&2
    return 0
  fi
  local missing=()
  for p in "${LATTICE_APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    lattice_as_root apt-get update -qq
    lattice_as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

lattice_setup_rust() {
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: installing the Rust toolchain with rustup" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if command -v rustup >/dev/null 2>&1; then
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
  fi
}

lattice_setup() {
  lattice_setup_packages
  lattice_setup_rust
}

# Run directly: set up and say so.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  lattice_setup
  echo "setup: ready" >&2
fi
