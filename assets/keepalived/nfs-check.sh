#!/bin/bash
# Managed by ha-setup (runbook keepalived): vrrp_script chk_nfs_health of the NFS pair.
# Installed as /usr/local/lib/ha-setup/keepalived/nfs-check; keepalived runs it as root.
#   nfs-check                      the check: passes when an NFS server unit is active and
#                                  answers on TCP 2049 here; failing puts the instance in FAULT
#                                  (weight 0), which hands the NFS VIP to the peer.
#   nfs-check notify STATE DIR     notify_master | notify_backup | notify_fault; DIR is the share.
# The holder generation (track_file nfs_generation, weight 2): a server that becomes MASTER
# takes max(its own, the one in DIR/.ha-setup-nfs-generation, which replication copied from the
# previous holder) + 1 and writes it to both. The new holder then outranks the previous one
# (150 + 2(g+1) > 151 + 2g), so a previous holder that returns still MASTER (thawed, or its
# link healed) gives the VIP up instead of taking it back with its older copy of the share.
# Two takeovers within one replication interval can leave equal generations (the base
# priority decides then). Verdicts and decisions are logged with the tag ha-setup-keepalived.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN=${HA_RUN_DIR:-/run/ha-setup-keepalived}
LIB=${HA_LIB_DIR:-/var/lib/ha-setup/keepalived}
# 151 + 2 x 50 = 251: the priority stays below keepalived's ceiling of 254.
MAX_GENERATION=50
mkdir -p "$RUN" "$LIB" 2>/dev/null

log() { logger -t ha-setup-keepalived -p daemon.notice -- "$*" 2>/dev/null || echo "ha-setup-keepalived: $*" >&2; }
number() { case $1 in '' | *[!0-9]*) echo 0 ;; *) echo "$1" ;; esac; }

if [ "${1:-}" = notify ]; then
  state=${2:-}
  dir=${3:-}
  trap '' TERM HUP INT
  case $state in
    master)
      own=$(number "$(cat "$LIB/nfs-generation" 2>/dev/null)")
      seen=$(number "$(cat "$dir/.ha-setup-nfs-generation" 2>/dev/null)")
      g=$(( (own > seen ? own : seen) + 1 ))
      [ $g -gt $MAX_GENERATION ] && g=$MAX_GENERATION
      printf '%s\n' $g >"$LIB/nfs-generation.tmp" && mv -f "$LIB/nfs-generation.tmp" "$LIB/nfs-generation"
      if [ -d "$dir" ]; then printf '%s\n' $g >"$dir/.ha-setup-nfs-generation.tmp" && mv -f "$dir/.ha-setup-nfs-generation.tmp" "$dir/.ha-setup-nfs-generation"; fi
      log "NFS MASTER: this server holds the NFS VIP, holder generation $g (was $own here, $seen in the share): a returning previous holder does not take the VIP back"
      ;;
    backup | fault) log "NFS $(echo "$state" | tr '[:lower:]' '[:upper:]'): this server does not hold the NFS VIP (holder generation $(number "$(cat "$LIB/nfs-generation" 2>/dev/null)") kept)" ;;
    *) echo "usage: nfs-check [notify master|backup|fault DIR]" >&2; exit 2 ;;
  esac
  exit 0
fi

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
