#!/bin/sh
# Before removal: stop the headless node if it runs (its ledger and key stay in
# /var/lib/lattice and /etc/lattice).
set -e
if [ -d /run/systemd/system ] && systemctl is-active --quiet lattice 2>/dev/null; then
  systemctl stop lattice || true
fi
exit 0
