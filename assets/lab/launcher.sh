#!/bin/bash
# Runs one lab host for as long as it should live. Started detached (own session) by
# `ha-setup lab up`, output appended to <hostdir>/launcher.log.
#
#   launcher.sh <name> <hostdir> <lower> <bridge> <cgroup2-root> [<cgroup-v1-systemd-root>]
#
# 1. Moves itself into its own cgroups (pitfall 2), so that the host's systemd gets a
#    cgroup tree of its own; nspawn then creates <cg>/supervisor and <cg>/payload there.
# 2. Re-executes itself in a private mount namespace and mounts the host's overlay
#    (lower = base image, upper = per host) there: the mount lives exactly as long as this
#    process, so no mount can outlive the host, even after a SIGKILL.
# 3. Runs systemd-nspawn with systemd as PID 1 and restarts it when it exits 133, which is
#    how nspawn reports a `reboot` inside the host (pitfall 3).
# SIGTERM to this process (or to nspawn) powers the host off in order (pitfall 10).
set -u
name=$1 hostdir=$2 lower=$3 bridge=$4 cg2=$5 cgv1=${6:-}

if [ "${HA_LAB_INNER:-}" != 1 ]; then
  mkdir -p "$cg2/ha-lab-$name" && echo $$ > "$cg2/ha-lab-$name/cgroup.procs" || exit 90
  if [ -n "$cgv1" ]; then
    mkdir -p "$cgv1/ha-lab-$name" && echo $$ > "$cgv1/ha-lab-$name/cgroup.procs" || exit 90
  fi
  HA_LAB_INNER=1 exec unshare --mount --propagation private -- /bin/bash "$0" "$@"
  exit 91
fi

mount -t overlay "ha-lab-$name" \
  -o "lowerdir=$lower,upperdir=$hostdir/upper,workdir=$hostdir/work" "$hostdir/root" || exit 92
if [ -e "$hostdir/nfs.tmpfs" ]; then
  mount -t tmpfs -o size=512m,mode=0755 "ha-lab-$name-nfs" "$hostdir/nfs" || exit 93
fi

veth="vb-$name"
stopping=0 child=
trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT HUP
echo $$ > "$hostdir/launcher.pid"

# The machine side of the host's link: no IPv6 on it; stays down while the link is "cut".
tend_link() {
  local i
  for i in $(seq 100); do
    if [ -e "/sys/class/net/$veth" ]; then
      echo 1 > "/proc/sys/net/ipv6/conf/$veth/disable_ipv6" 2>/dev/null
      [ -e "$hostdir/link-cut" ] && ip link set dev "$veth" down
      return
    fi
    sleep 0.05
  done
}

while :; do
  echo "$(date -u +%FT%TZ) starting $name"
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn --quiet --boot \
    --register=no --keep-unit \
    --directory="$hostdir/root" --machine="$name" --hostname="$name" \
    --network-bridge="$bridge" \
    --system-call-filter=open_by_handle_at \
    --bind="$hostdir/nfs:/srv/nfs" \
    --resolv-conf=off --timezone=off --link-journal=no --console=read-only &
  child=$!
  echo "$child" > "$hostdir/nspawn.pid"
  [ "$stopping" = 1 ] && kill -TERM "$child" 2>/dev/null
  tend_link &
  # wait returns early (>128) when a trapped signal arrives: wait again until nspawn is gone.
  while :; do
    wait "$child"; rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  child=
  echo "$(date -u +%FT%TZ) nspawn exited $rc"
  [ "$stopping" = 1 ] && break
  [ "$rc" = 133 ] || break
  echo "$(date -u +%FT%TZ) reboot"
done
rm -f "$hostdir/nspawn.pid" "$hostdir/launcher.pid"
exit 0
