#!/bin/bash
# Managed by ha-setup (runbook keepalived): vrrp_script chk_nfs_health of the NFS pair.
# Installed as /usr/local/lib/ha-setup/keepalived/nfs-check; keepalived runs it as root.
# Passes when an NFS server unit is active and answers on TCP 2049 here; failing puts the
# instance in FAULT (weight 0), which hands the NFS VIP to the peer. Verdict changes are logged
# with the tag ha-setup-keepalived.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN=${HA_RUN_DIR:-/run/ha-setup-keepalived}
mkdir -p "$RUN" 2>/dev/null

report() {
  local last
  last=$(cat "$RUN/nfs-check.last" 2>/dev/null)
  if [ "$last" != "$2 $1" ]; then
    logger -t ha-setup-keepalived -p daemon.notice -- "nfs check: $([ "$2" -eq 0 ] && echo ok || echo FAIL): $1" 2>/dev/null || true
    echo "$2 $1" >"$RUN/nfs-check.last"
  fi
  exit "$2"
}

unit=
for u in nfs-ganesha nfs-server nfs-kernel-server; do
  if systemctl is-active --quiet "$u" 2>/dev/null; then unit=$u; break; fi
done
[ -n "$unit" ] || report "no NFS server unit is active (nfs-ganesha, nfs-server)" 1
timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2049' 2>/dev/null || report "$unit is active but nothing answers on TCP 2049" 1
report "$unit answers on TCP 2049" 0
