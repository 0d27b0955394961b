#!/bin/sh
# After unpacking: a system user for the headless node, its configuration (kept if it
# exists: it holds the node's key) and its data directory. The service is not started.
set -e
if ! getent passwd lattice >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/lattice --no-create-home \
    --shell /usr/sbin/nologin --user-group lattice 2>/dev/null \
    || adduser --system --home /var/lib/lattice --no-create-home --group lattice
fi
install -d -m 0755 /etc/lattice
install -d -m 0700 -o lattice -g lattice /var/lib/lattice
if [ ! -e /etc/lattice/lattice.env ]; then
  install -m 0600 -o lattice -g lattice /usr/share/lattice/lattice.env.example /etc/lattice/lattice.env
  # The node's own key, written into its env file (mode 0600).
  runuser -u lattice -- /usr/bin/lattice keygen --env-file /etc/lattice/lattice.env >/dev/null 2>&1 \
    || /usr/bin/lattice keygen --env-file /etc/lattice/lattice.env >/dev/null 2>&1 || true
  chown lattice:lattice /etc/lattice/lattice.env
  chmod 0600 /etc/lattice/lattice.env
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
