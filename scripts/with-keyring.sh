#!/usr/bin/env bash
# Runs a command against a real Secret Service: a private D-Bus session with
# gnome-keyring's secrets component, unlocked with a throwaway password, so the app's
# keychain code is tested against the real thing (usage: dbus-run-session -- this CMD...).
# Sets LATTICE_TEST_KEYCHAIN=1 so the keychain tests demand the keychain path.
set -euo pipefail
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  echo "with-keyring: run me under dbus-run-session" >&2
  exit 2
fi
home=$(mktemp -d)
trap 'kill "${GNOME_KEYRING_PID:-}" 2>/dev/null || true; rm -rf "$home"' EXIT
export XDG_DATA_HOME="$home/.local/share" XDG_RUNTIME_DIR="$home/run"
mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
# --unlock reads the login keyring's password from stdin and creates it if missing.
eval "$(printf 'lattice-test\n' | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL GNOME_KEYRING_PID
export LATTICE_TEST_KEYCHAIN=1
"$@"
