#!/usr/bin/env bash
# The app in the system tray (issue 13), for real: the app under Xvfb beside a real tray
# host (trayer, XEmbed), its window closed the way a window manager closes it
# (WM_DELETE_WINDOW), then the tray menu driven with the mouse and keyboard (xdotool).
# Closing must hide the window and keep the node syncing; "Show Lattice" must bring the
# window back; "Quit Lattice" must stop the node and the app. Screenshots land in
# artifacts/e2e/tray-*.png. Needs trayer, xdotool and python3-xlib (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
APP="${LATTICE_APP:-${CARGO_TARGET_DIR:-target}/debug/lattice-app}"
[ -x "$APP" ] || { echo "no app at $APP: cargo build -p lattice-app --features custom-protocol" >&2; exit 1; }
APP="$(realpath "$APP")"
SHOTS="$(pwd)/artifacts/e2e"
mkdir -p "$SHOTS"

WORK="$(mktemp -d -t lattice-tray-XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -KILL -f "^$APP" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAILED: $*" >&2; import -window root "$SHOTS/tray-failure.png" 2>/dev/null || true; exit 1; }
until_() { # until_ WHAT SECONDS CMD...: waits for CMD to succeed, every 100 ms
  local what="$1" secs="$2"; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || fail "timed out after ${secs} s waiting for: $what"
    sleep 0.1
  done
}

unset DISPLAY
for n in $(shuf -i 60-68); do [ -e "/tmp/.X$n-lock" ] || { export DISPLAY=":$n"; break; }; done
[ -n "${DISPLAY:-}" ] || fail "no free X display in :60-:68 (stale /tmp/.X*-lock files?)"
Xvfb "$DISPLAY" -screen 0 1280x720x24 -nolisten tcp >/dev/null 2>&1 & PIDS+=($!)
until_ "Xvfb on $DISPLAY" 15 test -e "/tmp/.X11-unix/X${DISPLAY#:}"
trayer --edge bottom --align right --widthtype pixel --width 120 --height 32 >/dev/null 2>&1 & PIDS+=($!)
until_ "the tray host" 15 xdotool search --onlyvisible --class trayer

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
API="http://127.0.0.1:$PORT/api/lattice/p2p/status"
mkdir -p "$WORK/home" "$WORK/cwd"
printf 'LATTICE_P2P_LISTEN=/ip4/127.0.0.1/tcp/0\nLATTICE_HTTP_LISTEN=127.0.0.1:%s\n' "$PORT" > "$WORK/cwd/.env"
(cd "$WORK/cwd" && HOME="$WORK/home" TMPDIR="$WORK" LATTICE_KEYCHAIN=off RUST_LOG=info \
  dbus-run-session "$APP" > "$WORK/app.log" 2>&1) & PIDS+=($!)
until_ "the app's node" 60 curl -sf "$API"
until_ "the app's window" 30 xdotool search --onlyvisible --name '^Lattice$'
app_alive() { pgrep -f "^$APP" >/dev/null; }
window_shown() { xdotool search --onlyvisible --name '^Lattice$' >/dev/null; }
grep -q "no tray icon" "$WORK/app.log" && fail "the app made no tray icon: $(grep 'no tray icon' "$WORK/app.log")"

# Closed as a window manager closes it.
WID=$(xdotool search --onlyvisible --name '^Lattice$' | head -1)
/usr/bin/python3 - "$WID" <<'PY'
import sys
from Xlib import X, display, protocol
d = display.Display()
w = d.create_resource_object('window', int(sys.argv[1]))
ev = protocol.event.ClientMessage(window=w, client_type=d.intern_atom('WM_PROTOCOLS'),
                                  data=(32, [d.intern_atom('WM_DELETE_WINDOW'), X.CurrentTime, 0, 0, 0]))
w.send_event(ev, event_mask=X.NoEventMask)
d.flush()
PY
until_ "the window to hide" 10 bash -c "! xdotool search --onlyvisible --name '^Lattice\$'"
sleep 1
app_alive || fail "closing the window quit the app"
curl -sf "$API" >/dev/null || fail "the node stopped when the window closed"
echo "ok: closing the window hides it; the app and its node keep running"

# The tray icon sits at the right end of trayer's panel.
open_menu() {
  local tray; tray=$(xdotool search --onlyvisible --class trayer | tail -1)
  eval "$(xdotool getwindowgeometry --shell "$tray")"
  xdotool mousemove $((X + WIDTH - 18)) $((Y + HEIGHT / 2)) click 3
  sleep 1
}
open_menu
import -window root "$SHOTS/tray-menu.png"
# The first item is the status line (not clickable): Down selects "Show Lattice".
xdotool key Down Return
until_ "Show Lattice to bring the window back" 10 window_shown
echo "ok: the tray's Show Lattice brings the window back"

WID=$(xdotool search --onlyvisible --name '^Lattice$' | head -1)
xdotool windowunmap "$WID"
open_menu
# Up from the top wraps to the last item: Quit.
xdotool key Up Return
until_ "Quit to stop the app" 20 bash -c "! pgrep -f '^$APP'"
grep -q "Quit from the tray" "$WORK/app.log" || fail "the app stopped, but not by the tray's Quit"
curl -sf "$API" >/dev/null && fail "the node still answers after Quit"
echo "ok: the tray's Quit stops the node and the app"
