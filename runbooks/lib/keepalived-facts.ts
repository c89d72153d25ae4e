/**
 * Read-only facts of the keepalived runbook: keepalived itself (installed, version, service
 * state), the files it manages (content, mode, owner), and ha-setup's own VRRP firewall rules.
 * Scripts print KEY=value lines (file contents base64); parsers are pure and unit-tested.
 */
import { quote } from '../../source/engine/shell.js';
import type { FactDef } from '../../source/engine/step.js';
import { b64, parseKv } from './pg-facts.js';
import { nftRulesWithComments } from './nft-rules.js';

export interface ManagedFile {
  content: string | null;
  /** Octal mode as stat prints it ("644"), null when absent. */
  mode: string | null;
  /** "user:group", null when absent. */
  owner: string | null;
}

export interface KeepalivedFacts {
  /** Path of the keepalived binary, null when not installed. */
  binary: string | null;
  /** "2.2.7", null when unknown. */
  version: string | null;
  /** systemctl is-enabled / is-active keepalived ("" when unknown). */
  enabled: string;
  active: string;
  files: Record<string, ManagedFile>;
}

const PRELUDE = 'b64() { if [ -f "$1" ]; then echo "$2=$(base64 -w0 < "$1" || true)"; else echo "$2=-"; fi; }';

/** keepalived and the given files (as root: keepalived.conf is 0640). */
export function keepalivedFact(paths: string[]): FactDef<KeepalivedFacts> {
  const lines = paths.flatMap((p, i) => [`b64 ${quote(p)} F${i}`, `echo "S${i}=$(stat -c '%a %U:%G' ${quote(p)} 2>/dev/null || echo -)"`]);
  return {
    id: `keepalived-${paths.join(',')}`,
    sudo: true,
    script: [
      PRELUDE,
      'bin=$(command -v keepalived 2>/dev/null || true)',
      'echo "BIN=$bin"',
      'if [ -n "$bin" ]; then echo "VERSION=$("$bin" --version 2>&1 | sed -n \'s/^Keepalived v\\([0-9][0-9.]*\\).*/\\1/p\' | head -n 1)"; fi',
      'echo "ENABLED=$(systemctl is-enabled keepalived 2>/dev/null || true)"',
      'echo "ACTIVE=$(systemctl is-active keepalived 2>/dev/null || true)"',
      ...lines,
    ].join('\n'),
    parse: (stdout) => parseKeepalivedFacts(stdout, paths),
  };
}

export function parseKeepalivedFacts(stdout: string, paths: string[]): KeepalivedFacts {
  const kv = parseKv(stdout);
  const files: Record<string, ManagedFile> = {};
  paths.forEach((p, i) => {
    const st = kv[`S${i}`] ?? '-';
    const [mode, owner] = st === '-' ? [null, null] : st.split(' ');
    files[p] = { content: b64(kv, `F${i}`), mode: mode ?? null, owner: owner ?? null };
  });
  return {
    binary: kv.BIN || null,
    version: kv.VERSION || null,
    enabled: kv.ENABLED ?? '',
    active: kv.ACTIVE ?? '',
    files,
  };
}

/** "2.2.7" >= "2.0"? Unknown versions compare as too old. */
export function versionAtLeast(version: string | null, min: string): boolean {
  if (!version) return false;
  const a = version.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// ha-setup's VRRP rules in the host firewall

export const VRRP_COMMENT = 'ha-setup-vrrp';
export const NFT_VRRP = '/etc/ha-setup/nftables-vrrp.nft';

export interface NftVrrpRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  /** The source address the rule accepts VRRP from. */
  source: string | null;
}

export interface VrrpFirewallFacts {
  /** Rules carrying ha-setup-vrrp's comment in nftables chains. */
  nft: NftVrrpRule[];
  /** iptables -S INPUT lines carrying the comment (v4 and v6). */
  iptables: string[];
  ip6tables: string[];
  /** NFT_VRRP as written, and /etc/nftables.conf. */
  nftFile: string | null;
}

export const vrrpFirewallFact: FactDef<VrrpFirewallFacts> = {
  id: 'firewall-vrrp',
  sudo: true,
  script: [
    PRELUDE,
    'have() { command -v "$1" >/dev/null 2>&1; }',
    'if have nft; then echo "NFT=$(nft -a list ruleset 2>/dev/null | base64 -w0 || true)"; fi',
    `if have iptables; then echo "IPT4=$(iptables -S INPUT 2>/dev/null | grep -F -- ${quote(VRRP_COMMENT)} | base64 -w0 || true)"; fi`,
    `if have ip6tables; then echo "IPT6=$(ip6tables -S INPUT 2>/dev/null | grep -F -- ${quote(VRRP_COMMENT)} | base64 -w0 || true)"; fi`,
    `b64 ${NFT_VRRP} NFT_FILE`,
  ].join('\n'),
  parse(stdout) {
    const kv = parseKv(stdout);
    const lines = (k: string): string[] => (b64(kv, k) ?? '').split('\n').filter(Boolean);
    return { nft: parseNftVrrpRules(b64(kv, 'NFT') ?? ''), iptables: lines('IPT4'), ip6tables: lines('IPT6'), nftFile: b64(kv, 'NFT_FILE') };
  },
};

/** Rules with ha-setup-vrrp's comment in `nft -a list ruleset` output, with their chain and handle. */
export function parseNftVrrpRules(text: string): NftVrrpRule[] {
  return nftRulesWithComments(text, [VRRP_COMMENT]).map((r) => {
    const src = /\bip6? saddr (\S+)/.exec(r.line);
    return { family: r.family, table: r.table, chain: r.chain, handle: r.handle, source: src ? src[1]! : null };
  });
}
