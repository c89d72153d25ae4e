#!/bin/bash
# Managed by ha-setup (runbook keepalived): vrrp_script chk_haproxy of the load balancer pair.
# Installed as /usr/local/lib/ha-setup/keepalived/haproxy-check; keepalived runs it as root with
# the app port as its argument. Passes when haproxy is active and listens on that port; failing
# puts the instance in FAULT (weight 0), which hands lb_vip to the other load balancer. Verdict
# changes are logged with the tag ha-setup-keepalived.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN=${HA_RUN_DIR:-/run/ha-setup-keepalived}
mkdir -p "$RUN" 2>/dev/null
port=${1:-}

report() {
  local last
  last=$(cat "$RUN/haproxy-check.last" 2>/dev/null)
  if [ "$last" != "$2 $1" ]; then
    logger -t ha-setup-keepalived -p daemon.notice -- "haproxy check: $([ "$2" -eq 0 ] && echo ok || echo FAIL): $1" 2>/dev/null || true
    echo "$2 $1" >"$RUN/haproxy-check.last"
  fi
  exit "$2"
}

case $port in '' | *[!0-9]*) echo "usage: haproxy-check <app port>" >&2; exit 2 ;; esac
systemctl is-active --quiet haproxy 2>/dev/null || report "haproxy is not active" 1
# Listening, not just running: a reload that failed or a bind error leaves no frontend.
ss -Hltn "sport = :$port" 2>/dev/null | grep -q . || report "haproxy is active but nothing listens on TCP $port" 1
report "haproxy listens on TCP $port" 0
