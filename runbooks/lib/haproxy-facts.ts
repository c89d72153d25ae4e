/**
 * Read-only facts of the HAProxy runbooks: the haproxy package, service and config file (with
 * the stats password masked on the server: only its sha256 leaves the host), SELinux's
 * haproxy_connect_any, and the firewall rules ha-setup's HAProxy runbooks added.
 */
import { quote } from '../../source/engine/shell.js';
import type { FactDef } from '../../source/engine/step.js';
import { b64, parseKv } from './pg-facts.js';
import { HAPROXY_CFG, MASK } from './haproxy-config.js';

export interface HaproxyFacts {
  installed: boolean;
  /** "2.6.12" from `haproxy -v`, null when not installed. */
  version: string | null;
  active: boolean;
  enabled: boolean;
  /** haproxy.cfg with every stats password replaced by MASK; null when there is no file. */
  config: string | null;
  /** sha256 of each stats password of the file, in file order. */
  authHashes: string[];
}

const PRELUDE = 'have() { command -v "$1" >/dev/null 2>&1; }';

export const haproxyFact: FactDef<HaproxyFacts> = {
  id: 'haproxy',
  sudo: true,
  script: [
    PRELUDE,
    'if have haproxy; then echo "VERSION=$(haproxy -v 2>/dev/null | head -n1)"; fi',
    'echo "ACTIVE=$(systemctl is-active haproxy 2>/dev/null || true)"',
    'echo "ENABLED=$(systemctl is-enabled haproxy 2>/dev/null || true)"',
    `f=${quote(HAPROXY_CFG)}`,
    'if [ -f "$f" ]; then',
    // The password goes through builtins and a pipe only (never argv); only its hash is printed.
    `  sed -n 's/^[[:space:]]*stats auth [^:[:space:]]*:\\(.*\\)$/\\1/p' "$f" | while IFS= read -r p; do echo "AUTH=$(printf '%s' "$p" | sha256sum | cut -c1-64)"; done`,
    `  echo "CONFIG=$(sed 's/^\\([[:space:]]*stats auth [^:[:space:]]*:\\).*$/\\1${MASK}/' "$f" | base64 -w0)"`,
    'fi',
  ].join('\n'),
  parse: parseHaproxyFacts,
};

export function parseHaproxyFacts(stdout: string): HaproxyFacts {
  const kv = parseKv(stdout);
  const version = /version (\d+\.\d+(?:\.\d+)?)/i.exec(kv.VERSION ?? '')?.[1] ?? null;
  return {
    installed: version !== null,
    version,
    active: kv.ACTIVE === 'active',
    enabled: kv.ENABLED === 'enabled',
    config: b64(kv, 'CONFIG'),
    authHashes: stdout
      .split('\n')
      .map((l) => /^AUTH=([0-9a-f]{64})$/.exec(l)?.[1])
      .filter((h): h is string => Boolean(h)),
  };
}

export { versionAtLeast } from './haproxy-config.js';

export interface HaproxySelinux {
  mode: 'enforcing' | 'permissive' | 'disabled' | 'absent';
  /** haproxy_connect_any: null when the boolean is unknown to the policy. */
  connectAny: boolean | null;
}

export const haproxySelinuxFact: FactDef<HaproxySelinux> = {
  id: 'selinux-haproxy',
  sudo: true,
  script: [
    PRELUDE,
    'if have getenforce; then echo "SELINUX=$(getenforce 2>/dev/null || true)"; else echo SELINUX=absent; fi',
    'if have getsebool; then echo "BOOL=$(getsebool haproxy_connect_any 2>/dev/null || true)"; fi',
  ].join('\n'),
  parse(stdout) {
    const kv = parseKv(stdout);
    const mode = (kv.SELINUX ?? 'absent').toLowerCase();
    const b = /-->\s*(on|off)/.exec(kv.BOOL ?? '')?.[1];
    return { mode: mode === 'enforcing' || mode === 'permissive' || mode === 'disabled' ? mode : 'absent', connectAny: b === undefined ? null : b === 'on' };
  },
};

/** Rules with ha-setup's HAProxy comment in nftables input chains ("inet filter input 8181"). */
export const HA_FW_COMMENT = 'ha-setup-haproxy';

export const haproxyNftFact: FactDef<{ rules: string[] }> = {
  id: 'nft-haproxy',
  sudo: true,
  script: `if command -v nft >/dev/null 2>&1; then nft list ruleset 2>/dev/null | awk '/^table /{t=$2" "$3} /chain /{c=$2} /comment "${HA_FW_COMMENT}"/ && match($0, /dport [0-9]+/) {print "RULE=" t " " c " " substr($0, RSTART+6, RLENGTH-6)}'; fi`,
  parse: (stdout) => ({ rules: stdout.split('\n').filter((l) => l.startsWith('RULE=')).map((l) => l.slice(5).trim()) }),
};
