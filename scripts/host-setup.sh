#!/usr/bin/env bash
# Installs what the jump host needs to run the lab and the end-to-end tests:
#   systemd-container (systemd-nspawn), debootstrap, openssh-server (sshd binary for the e2e
#   test), openssh-client, tmux (the wizard's real-terminal test, test/lab/wizard-tty.test.ts),
#   haproxy (unit tests check generated configs with the real `haproxy -c`; it is never started
#   here) and rsync (the NFS replication unit test runs the real rsync).
#   Service starts are blocked during the install so that nothing starts listening on this
#   machine. Idempotent; does nothing when all are present.
set -euo pipefail
need=()
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v dpkg-scanpackages >/dev/null 2>&1 || need+=(dpkg-dev)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v sudo >/dev/null 2>&1 || need+=(sudo)
command -v script >/dev/null 2>&1 || need+=(bsdutils)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v rsync >/dev/null 2>&1 || need+=(rsync)
if [ ${#need[@]} -eq 0 ]; then
  echo "host set-up: all present (systemd-nspawn, debootstrap, sshd, ssh, dpkg-scanpackages, psql, sudo, script, tmux, haproxy, rsync)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "host set-up: missing ${need[*]}; run as root: apt-get install -y --no-install-recommends ${need[*]}" >&2
  exit 1
fi
echo "host set-up: installing ${need[*]}"
# Block service starts from package scripts (no sshd listening on this machine).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/tmp/ha-setup-host-setup.log 2>&1; then
  apt-get update -qq >>/tmp/ha-setup-host-setup.log 2>&1
  apt-get install -y -qq --no-install-recommends "${need[@]}" >>/tmp/ha-setup-host-setup.log 2>&1 || {
    echo "host set-up: apt-get install failed, see /tmp/ha-setup-host-setup.log" >&2; tail -5 /tmp/ha-setup-host-setup.log >&2; exit 1; }
fi
echo "host set-up: installed ${need[*]}"
