#!/bin/bash
# Managed by ha-setup (runbook keepalived): keepalived's helper for the PostgreSQL pair.
# Installed as /usr/local/lib/ha-setup/keepalived/pg-ha; keepalived runs it as root.
#
#   pg-ha check          vrrp_script chk_pg_health (weight 0: failing puts the instance in FAULT,
#                        which hands the VIP to the peer)
#   pg-ha notify STATE   notify_master | notify_backup | notify_fault | notify_stop |
#                        notify_master_rx_lower_pri (STATE master-rx-lower-pri)
#   pg-ha may-start      ExecStartPre of the PostgreSQL unit: a fenced node starts only as a standby
#   pg-ha status         KEY=value lines for people and for `ha-setup drill`
#
# The rules (each decision is logged with the tag ha-setup-keepalived):
# - check passes for a writable primary that is not stale, and for a running standby that does
#   not hold the VIP (it must be able to take over when the primary dies: a check that required
#   "writable" or "streaming" would keep it in FAULT exactly then). It fails when PostgreSQL is
#   down, twice unanswered, or a standby holds the VIP without a promotion under way.
# - A primary is stale when the peer answers as a primary on a newer timeline: it is fenced
#   (stopped, and kept from starting again as a primary) by the check and by notify backup.
# - notify master promotes the local standby only when the peer is not a reachable writable
#   primary (it waits up to HA_FENCE_WAIT seconds for it to stop, then declines).
# - notify backup leaves a primary running unless the peer is a primary on the same or a newer
#   timeline: keepalived always starts in BACKUP, and stopping the primary then would stop the
#   healthy primary at every boot. A BACKUP node does not hold the VIP, so nothing writes to it
#   through the VIP.
# - notify fault fences a primary whose VIP interface lost its link (the peer takes over), and
#   marks a node whose PostgreSQL is down as fenced when the peer is a standby that takes over;
#   notify stop fences a primary when the peer is a reachable standby that will take over.
# - The generation file (track_file, weight 2) holds the timeline on a writable primary and 0
#   otherwise: a primary outranks a standby (2 x timeline >= 2 > the priority gap of 1), and
#   between two writable primaries (a frozen old primary that thaws, a cut link that heals) the
#   newer timeline has the higher priority, so the returning old primary never takes the VIP
#   back. keepalived watches the file, so this holds from the moment promote writes it.
# - With synchronous replication, a promoted standby stops waiting for a standby that is gone
#   (ALTER SYSTEM synchronous_standby_names = ''); `ha-setup rejoin db` resets it.
set -u
# HA_PATH_PREFIX, HA_KEEPALIVED_ENV, HA_RUN_DIR, HA_LIB_DIR, HA_SYSFS, HA_SYSTEMD_DIR: for the unit tests only.
export PATH=${HA_PATH_PREFIX:+$HA_PATH_PREFIX:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
SYSFS=${HA_SYSFS:-/sys}
SYSTEMD_DIR=${HA_SYSTEMD_DIR:-/run/systemd/system}

ENV_FILE=${HA_KEEPALIVED_ENV:-/etc/ha-setup/keepalived-pg.env}
if ! . "$ENV_FILE"; then
  echo "pg-ha: cannot read $ENV_FILE (written by ha-setup's keepalived runbook)" >&2
  exit 2
fi
RUN=${HA_RUN_DIR:-/run/ha-setup-keepalived}
LIB=${HA_LIB_DIR:-/var/lib/ha-setup/keepalived}
GEN=$LIB/pg-generation
FENCE=$LIB/pg-fenced
# 151 + 2 x 50 = 251: the priority stays below keepalived's ceiling of 254.
MAX_GENERATION=50
mkdir -p "$RUN" "$LIB" 2>/dev/null

log() { logger -t ha-setup-keepalived -p daemon.notice -- "$*" 2>/dev/null || echo "ha-setup-keepalived: $*" >&2; }
now_ms() { date +%s%3N; }
to_ms() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'; }
oneline() { printf '%s' "$1" | tr '\n' ' ' | cut -c1-160; }
# setpriv, not runuser: no PAM session (runuser would log two journal lines per check, every second).
as_pg() { (cd / && setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"); }
psql_local() { as_pg timeout "$1" "$HA_BINDIR/psql" -X -At -q -h "$HA_SOCKDIR" -p "$HA_PORT" -d postgres -c "$2"; }
holds_vip() { ip -o addr show 2>/dev/null | grep -qF " $HA_VIP/"; }

postmaster_alive() {
  local pid
  pid=$(head -n 1 "$HA_DATADIR/postmaster.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# "primary <timeline>" | "standby" | "down" | "unknown <why>"
local_state() {
  local out rc
  out=$(psql_local 2 "select case when pg_is_in_recovery() then 'standby' else 'primary ' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) end" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then
    case $out in
      standby) echo standby ;;
      "primary "*) echo "primary $((16#${out#primary }))" ;;
      *) echo "unknown unexpected answer: $(oneline "$out")" ;;
    esac
    return
  fi
  if ! postmaster_alive; then echo down; return; fi
  case $out in
    *"shutting down"* | *"starting up"* | *"not yet accepting connections"*) echo down ;;
    *) if [ $rc -eq 124 ]; then echo "unknown no answer within 2 s"; else echo "unknown $(oneline "$out")"; fi ;;
  esac
}

# "primary <timeline>" | "standby <timeline>" | "unreachable <why>" | "unverified <why>" (a replication connection as
# replicator with ha-setup's passfile: IDENTIFY_SYSTEM gives the timeline, in_hot_standby the role)
peer_state() {
  local ssl conn out tl hs rc
  if ! timeout 0.5 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HA_PEER" "$HA_PORT" 2>/dev/null; then
    echo "unreachable no TCP connection to $HA_PEER:$HA_PORT"
    return
  fi
  if [ -f "$HA_CA" ]; then ssl="sslmode=verify-full sslrootcert=$HA_CA"; else ssl=sslmode=require; fi
  conn="host=$HA_PEER port=$HA_PORT user=replicator dbname=replication replication=true connect_timeout=2 passfile=$HA_PASSFILE $ssl application_name=ha-setup-keepalived"
  out=$(as_pg timeout "$HA_PEER_TIMEOUT" "$HA_BINDIR/psql" -X -At -w -d "$conn" -c IDENTIFY_SYSTEM -c 'SHOW in_hot_standby' 2>&1)
  rc=$?
  if [ $rc -ne 0 ]; then
    # Down, stopping, starting or silent: not a writable primary. Anything else (password,
    # certificate, pg_hba) leaves the question open: "unverified" never counts as "not a primary".
    case $rc:$out in
      124:*) echo "unreachable no answer within $HA_PEER_TIMEOUT s" ;;
      *"shutting down"* | *"starting up"* | *"not yet accepting"* | *"recovery mode"* | *"Connection refused"* | *"server closed the connection"* | *"timeout expired"* | *"No route to host"*)
        echo "unreachable $(oneline "$out")" ;;
      *) echo "unverified $(oneline "${out:-psql exit $rc}")" ;;
    esac
    return
  fi
  tl=$(printf '%s\n' "$out" | sed -n 1p | cut -d'|' -f2)
  hs=$(printf '%s\n' "$out" | sed -n 2p)
  case $tl in '' | *[!0-9]*) echo "unverified unexpected answer: $(oneline "$out")"; return ;; esac
  case $hs in
    off) echo "primary $tl" ;;
    on) echo "standby $tl" ;;
    *) echo "unverified unexpected answer: $(oneline "$out")" ;;
  esac
}

describe_peer() {
  case $1 in
    "primary "*) echo "a reachable writable primary (timeline ${1#primary })" ;;
    "unverified "*) echo "reachable but could not be checked (${1#unverified }): it may be a writable primary" ;;
    *) echo "$1" ;;
  esac
}

# `ha-setup uninstall` writes the time it stops keepalived to $RUN/uninstall.
uninstalling() {
  local t
  t=$(cat "$RUN/uninstall" 2>/dev/null) || return 1
  case $t in '' | *[!0-9]*) return 1 ;; esac
  [ $(( $(date +%s) - t )) -le 120 ]
}

set_generation() {
  local want=$1 cur
  [ "$want" -gt $MAX_GENERATION ] && want=$MAX_GENERATION
  cur=$(cat "$GEN" 2>/dev/null)
  [ "$cur" = "$want" ] && return 0
  printf '%s\n' "$want" >"$GEN.tmp" && mv -f "$GEN.tmp" "$GEN"
  log "generation ${cur:-none} -> $want (keepalived priority +$((2 * want)))"
}

stop_postgres() {
  if [ -d "$SYSTEMD_DIR" ]; then timeout 120 systemctl stop "$HA_UNIT"; fi
  if postmaster_alive; then as_pg timeout 120 "$HA_BINDIR/pg_ctl" -D "$HA_DATADIR" -m fast -w stop >/dev/null 2>&1; fi
  ! postmaster_alive
}

# Keeps the local PostgreSQL from starting again as a primary (see may-start).
mark_fenced() {
  printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" >"$FENCE"
  set_generation 0
}

# Stops the local PostgreSQL and keeps it from starting again as a primary.
fence() {
  trap '' TERM HUP INT
  log "FENCING: stopping PostgreSQL ($HA_UNIT): $1"
  mark_fenced "$1"
  if stop_postgres; then log "fenced: PostgreSQL is stopped and may start again only as a standby"; else log "FENCING FAILED: PostgreSQL still runs in $HA_DATADIR"; fi
}

restart_under_way() {
  [ -d "$SYSTEMD_DIR" ] || return 1
  systemctl list-jobs --no-legend --plain 2>/dev/null | grep -F " $HA_UNIT.service " | grep -Eq ' (start|restart|try-restart|reload-or-restart|reload-or-start) '
}

promotion_declined() {
  local what at
  read -r what at _ <"$RUN/promote" 2>/dev/null || return 1
  [ "$what" = declined ] && [ $(($(date +%s) - at)) -lt 60 ]
}

promotion_pending() {
  local what at
  read -r what at _ <"$RUN/promote" 2>/dev/null || return 1
  [ "$what" = promoting ] && [ $(($(date +%s) - at)) -lt $(($(to_ms "$HA_FENCE_WAIT") / 1000 + 70)) ]
}

report() {
  # Logs the verdict only when it changed, then exits with the check's status.
  local last
  last=$(cat "$RUN/check.last" 2>/dev/null)
  if [ "$last" != "$2 $1" ]; then
    log "check: $([ "$2" -eq 0 ] && echo ok || echo FAIL): $1"
    echo "$2 $1" >"$RUN/check.last"
  fi
  exit "$2"
}

cmd_check() {
  local st peer tl ptl n
  st=$(local_state)
  case $st in unknown*) ;; *) rm -f "$RUN/unknown" ;; esac
  case $st in standby) ;; *) rm -f "$RUN/readonly" ;; esac
  case $st in
    down)
      if [ -f "$FENCE" ]; then report "fenced, PostgreSQL stopped" 1; fi
      # `systemctl restart` (a runbook applying a setting) is not a failure: no failover for it.
      if restart_under_way; then report "PostgreSQL is being restarted by systemd: tolerated" 0; fi
      report "PostgreSQL is not running" 1
      ;;
    unknown*)
      n=$(($(cat "$RUN/unknown" 2>/dev/null || echo 0) + 1))
      echo $n >"$RUN/unknown"
      [ $n -ge 2 ] && report "PostgreSQL did not answer twice in a row (${st#unknown })" 1
      report "PostgreSQL did not answer once (${st#unknown }): tolerated" 0
      ;;
    standby)
      set_generation 0
      if [ -f "$FENCE" ]; then
        rm -f "$FENCE"
        log "runs as a standby again: fence lifted"
      fi
      if holds_vip; then
        promotion_pending && report "holds the VIP, promotion under way" 0
        # keepalived runs this check and notify master side by side: a check a few ms after
        # the VIP arrived may come before notify's mark. A declined promotion fails at once.
        n=$(($(cat "$RUN/readonly" 2>/dev/null || echo 0) + 1))
        echo $n >"$RUN/readonly"
        if [ $n -lt 2 ] && ! promotion_declined; then report "holds the VIP as a standby, promotion not seen yet: tolerated once" 0; fi
        report "holds the VIP but is a read-only standby" 1
      fi
      rm -f "$RUN/readonly"
      report "healthy standby, can take over" 0
      ;;
    primary*)
      tl=${st#primary }
      if [ -f "$FENCE" ]; then
        # Being stopped by a fence, or started around it (pg_ctl): it must not serve.
        set_generation 0
        systemctl stop --no-block "$HA_UNIT" 2>/dev/null
        report "fenced, PostgreSQL still runs as a primary: being stopped" 1
      fi
      peer=$(peer_state)
      case $peer in
        "primary "*)
          ptl=${peer#primary }
          if [ "$ptl" -gt "$tl" ]; then
            fence "stale primary: $HA_PEER is the primary on timeline $ptl, this node is on timeline $tl"
            report "stale primary, fenced" 1
          fi
          set_generation "$tl"
          report "writable primary on timeline $tl (peer $HA_PEER also a primary on timeline $ptl: the stale one)" 0
          ;;
      esac
      set_generation "$tl"
      report "writable primary on timeline $tl" 0
      ;;
  esac
}

promote() {
  local deadline peer waited=no out t0 st tl lsn
  echo "promoting $(date +%s)" >"$RUN/promote"
  deadline=$(($(now_ms) + $(to_ms "$HA_FENCE_WAIT")))
  while :; do
    peer=$(peer_state)
    case $peer in "primary "* | "unverified "*) ;; *) break ;; esac
    if [ "$(now_ms)" -ge $deadline ]; then
      log "NOT PROMOTING: $HA_PEER is still $(describe_peer "$peer") after $HA_FENCE_WAIT s; two primaries must never exist: the health check hands the VIP back"
      echo "declined $(date +%s)" >"$RUN/promote"
      return 0
    fi
    if [ $waited = no ]; then log "MASTER: $HA_PEER is $(describe_peer "$peer"): waiting up to $HA_FENCE_WAIT s for it to stop"; fi
    waited=yes
    sleep 0.2
  done
  if ! holds_vip; then
    log "NOT PROMOTING: this node no longer holds the VIP $HA_VIP"
    echo "declined $(date +%s)" >"$RUN/promote"
    return 0
  fi
  lsn=$(psql_local 2 "select coalesce(pg_last_wal_receive_lsn()::text, 'none') || ' received, ' || coalesce(pg_last_wal_replay_lsn()::text, 'none') || ' replayed'" 2>/dev/null)
  log "PROMOTING: the local standby (WAL ${lsn:-unknown}) becomes the primary; peer $HA_PEER: $peer"
  t0=$(now_ms)
  out=$(psql_local 70 "select pg_promote(true, 60)" 2>&1)
  if [ "$out" = t ]; then
    st=$(local_state)
    tl=${st#primary }
    case $tl in '' | *[!0-9]*) tl=0 ;; esac
    set_generation "$tl"
    echo "promoted $(date +%s)" >"$RUN/promote"
    log "PROMOTED in $(($(now_ms) - t0)) ms: this node is the writable primary on timeline $tl"
    sync_off
  else
    echo "declined $(date +%s)" >"$RUN/promote"
    log "PROMOTION FAILED: $(oneline "$out")"
  fi
}

# Synchronous replication with the only standby gone would block every commit on the new
# primary: commits stop waiting until `ha-setup rejoin db` brings a standby back and resets it.
sync_off() {
  local names
  names=$(psql_local 2 "show synchronous_standby_names" 2>/dev/null)
  [ -n "$names" ] || return 0
  if psql_local 5 "alter system set synchronous_standby_names = ''" >/dev/null 2>&1 && psql_local 5 "select pg_reload_conf()" >/dev/null 2>&1; then
    log "sync replication: no standby is left, so commits no longer wait for one (synchronous_standby_names was '$names'; ha-setup rejoin db restores it)"
  else
    log "sync replication: could not clear synchronous_standby_names ('$names'): commits wait until a standby connects"
  fi
}

link_down() {
  local iface carrier
  iface=$(ip -o addr show 2>/dev/null | awk -v a="$HA_ADDRESS" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }')
  iface=${iface:-$HA_IFACE}
  carrier=$(cat "$SYSFS/class/net/$iface/carrier" 2>/dev/null)
  [ "$carrier" = 0 ] || [ "$(cat "$SYSFS/class/net/$iface/operstate" 2>/dev/null)" = down ]
}

cmd_notify() {
  local state=$1 st peer tl ptl
  # keepalived sends SIGTERM to its scripts when it exits: a fence under way must complete.
  trap '' TERM HUP INT
  # Mark a promotion as under way before anything else: the health check runs meanwhile.
  if [ "$state" = master ]; then echo "promoting $(date +%s)" >"$RUN/promote"; fi
  exec 9>"$RUN/notify.lock"
  flock 9
  st=$(local_state)
  log "keepalived: $(echo "$state" | tr '[:lower:]' '[:upper:]') (PostgreSQL here: $st)"
  case $state in
    master)
      case $st in
        "primary "*) set_generation "${st#primary }"; echo "promoted $(date +%s)" >"$RUN/promote"; log "MASTER: already the writable primary (timeline ${st#primary }): nothing to do" ;;
        standby) promote ;;
        *) echo "declined $(date +%s)" >"$RUN/promote"; log "MASTER: cannot serve, PostgreSQL here is $st: the health check hands the VIP back" ;;
      esac
      ;;
    backup)
      case $st in
        "primary "*)
          tl=${st#primary }
          peer=$(peer_state)
          case $peer in
            "primary "*)
              ptl=${peer#primary }
              if [ "$ptl" -ge "$tl" ]; then fence "BACKUP while $HA_PEER is a primary on timeline $ptl (this node: timeline $tl)"
              else log "BACKUP: this node is the newer primary (timeline $tl > $ptl): kept running; the peer's health check fences the stale one"; fi
              ;;
            *) log "BACKUP: PostgreSQL stays the primary here ($HA_PEER: $peer); it does not hold the VIP, so nothing writes to it through the VIP" ;;
          esac
          ;;
        *) log "BACKUP: PostgreSQL here is $st: it accepts no writes" ;;
      esac
      ;;
    fault)
      case $st in
        "primary "*)
          if link_down; then fence "FAULT with the VIP's interface down: the peer takes over"
          else log "FAULT: the primary keeps running until the peer is a newer primary (then the health check fences it)"; fi
          ;;
        down)
          if [ -f "$FENCE" ]; then log "FAULT: PostgreSQL here is down and fenced"; exit 0; fi
          # The peer takes over now: this data directory must not come back as a primary.
          peer=$(peer_state)
          case $peer in
            "standby "*) mark_fenced "FAULT with PostgreSQL down while $HA_PEER is a standby that takes over"; log "FAULT: PostgreSQL is down and $HA_PEER takes over: fenced, it starts here again only as a standby" ;;
            *) log "FAULT: PostgreSQL here is down ($HA_PEER: $peer); not fenced: nobody else can take over" ;;
          esac
          ;;
        *) log "FAULT: PostgreSQL here is $st: it accepts no writes" ;;
      esac
      ;;
    master-rx-lower-pri)
      # Two MASTERs: a thawed or reconnected old primary meets the new one. The stale one
      # fences itself now instead of waiting for its next health check.
      case $st in
        "primary "*)
          tl=${st#primary }
          peer=$(peer_state)
          case $peer in
            "primary "*)
              ptl=${peer#primary }
              if [ "$ptl" -gt "$tl" ]; then fence "two MASTERs: $HA_PEER is the primary on a newer timeline ($ptl > $tl)"
              else log "two MASTERs: this node is the newer primary (timeline $tl, $HA_PEER: $ptl): kept"; fi
              ;;
            *) log "two MASTERs: this node is the only primary ($HA_PEER: $peer): kept" ;;
          esac
          ;;
        *) log "two MASTERs: PostgreSQL here is $st" ;;
      esac
      ;;
    stop)
      # ha-setup uninstall stops keepalived on both nodes, the standby's first: nobody takes over,
      # so there is nothing to fence; uninstall's PostgreSQL step stops PostgreSQL itself. The
      # mark is honoured for 120 s only (a mark left by an interrupted uninstall must not keep a
      # later stop from fencing).
      if uninstalling; then log "STOP: ha-setup uninstall stops keepalived on both nodes (the standby's first): nobody takes over; PostgreSQL here ($st) is left to uninstall's PostgreSQL step"; exit 0; fi
      case $st in
        "primary "*)
          peer=$(peer_state)
          case $peer in
            "standby "*) fence "keepalived stops here and $HA_PEER is a standby that takes over" ;;
            *) log "STOP: PostgreSQL stays the primary ($HA_PEER: $peer, nobody could take over); the VIP is gone until keepalived runs again" ;;
          esac
          ;;
        *) log "STOP: PostgreSQL here is $st" ;;
      esac
      ;;
    *) log "notify: unknown state $state"; exit 2 ;;
  esac
  exit 0
}

cmd_may_start() {
  [ -f "$FENCE" ] || exit 0
  if [ -f "$HA_DATADIR/standby.signal" ] || [ -f "$HA_DATADIR/recovery.conf" ]; then
    log "fenced node starts PostgreSQL as a standby: allowed"
    exit 0
  fi
  local msg
  msg="fenced by ha-setup ($(cat "$FENCE")): PostgreSQL may start here only as a standby; run ha-setup rejoin db, or remove $FENCE if this node must be the primary again"
  log "refusing to start PostgreSQL: $msg"
  echo "$msg" >&2
  exit 1
}

cmd_status() {
  local st
  st=$(local_state)
  echo "POSTGRES=${st%% *}"
  case $st in "primary "*) echo "TIMELINE=${st#primary }" ;; esac
  echo "VIP=$(holds_vip && echo yes || echo no)"
  echo "FENCED=$([ -f "$FENCE" ] && echo yes || echo no)"
  echo "GENERATION=$(cat "$GEN" 2>/dev/null || echo none)"
}

case ${1:-} in
  check) cmd_check ;;
  notify) cmd_notify "${2:-}" ;;
  may-start) cmd_may_start ;;
  status) cmd_status ;;
  *) echo "usage: pg-ha check | notify master|backup|fault|stop|master-rx-lower-pri | may-start | status" >&2; exit 2 ;;
esac
