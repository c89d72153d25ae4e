/**
 * firewalld's rich rules and ports carry no comment, so what ha-setup opened cannot be told from
 * what the admin opened by looking at firewalld. ha-setup therefore keeps a ledger on the server:
 * /etc/ha-setup/firewalld.ledger (0600), one line per opening it added itself,
 *
 *   <runtime|permanent> TAB <zone> TAB <rich-rule|port> TAB <value>
 *
 * written by the same bash that adds the opening, and only when firewall-cmd succeeded. The
 * runbooks add only what firewalld lacks (runtime and permanent checked apart), so a rule that
 * was there before ha-setup never gets a line, and uninstall (firewalldLedgerPlan) removes
 * exactly the ledger's rules that are still there, then the ledger.
 *
 * When firewalld is stopped at uninstall, its runtime rules are gone with it; the permanent ones
 * are removed with firewall-offline-cmd. Without that command they cannot be removed: the ledger
 * is moved to /var/lib/ha-setup (which uninstall keeps; /etc/ha-setup goes) for a later run.
 */
import ipaddr from 'ipaddr.js';
import { sh } from '../../source/engine/shell.js';
import type { Action } from '../../source/engine/step.js';
import type { FirewalldZone } from './pg-facts.js';

export const FIREWALLD_LEDGER = '/etc/ha-setup/firewalld.ledger';
/** Where uninstall keeps the ledger when the permanent rules cannot be removed yet. */
export const FIREWALLD_LEDGER_KEPT = '/var/lib/ha-setup/firewalld.ledger';

export type LedgerScope = 'runtime' | 'permanent';
export type LedgerKind = 'rich-rule' | 'port';

export interface LedgerEntry {
  scope: LedgerScope;
  zone: string;
  kind: LedgerKind;
  /** The rich rule as ha-setup passed it to firewall-cmd, or a port ("8181/tcp"). */
  value: string;
}

const dirOf = (path: string): string => path.replace(/\/[^/]*$/, '') || '/';

/** The ledger line of an entry (no trailing newline). */
export const ledgerLine = (e: LedgerEntry): string => [e.scope, e.zone, e.kind, e.value].join('\t');

const option = (kind: LedgerKind, verb: 'add' | 'remove' | 'query'): string => `--${verb}-${kind}`;

/**
 * Bash that adds one opening with firewall-cmd (unless firewalld has it already: then it is not
 * ours and is not recorded) and, only when the add succeeded, appends its line to
 * the ledger unless the ledger has it already (created 0600, its directory when missing). A failed
 * add records nothing and fails the script with firewall-cmd's exit code.
 */
export function firewalldAddScript(e: LedgerEntry): string {
  const ledger = FIREWALLD_LEDGER;
  const cmd = (verb: 'add' | 'query'): string =>
    e.scope === 'permanent' ? sh`firewall-cmd --permanent --zone=${e.zone} ${option(e.kind, verb)}=${e.value}` : sh`firewall-cmd --zone=${e.zone} ${option(e.kind, verb)}=${e.value}`;
  return [
    // There already (the admin added it since the facts were read): not ours, not recorded.
    `if ${cmd('query')} >/dev/null 2>&1; then :`,
    `elif ${cmd('add')}; then`,
    sh`  mkdir -p -- ${dirOf(ledger)}`,
    sh`  (umask 077 && touch -- ${ledger})`,
    sh`  chmod 0600 -- ${ledger}`,
    sh`  ha_fwd_line=$(printf '%s\\t%s\\t%s\\t%s' ${e.scope} ${e.zone} ${e.kind} ${e.value})`,
    sh`  grep -qxF -- "$ha_fwd_line" ${ledger} || printf '%s\\n' "$ha_fwd_line" >> ${ledger}`,
    'else exit $?; fi',
  ].join('\n');
}

/** The ledger's lines as entries; lines that are not four known fields are counted, not used. */
export function parseLedger(text: string | null): { entries: LedgerEntry[]; unreadable: number } {
  const entries: LedgerEntry[] = [];
  const seen = new Set<string>();
  let unreadable = 0;
  for (const line of (text ?? '').split('\n')) {
    if (!line.trim()) continue;
    const [scope, zone, kind, ...rest] = line.split('\t');
    const value = rest.join('\t');
    if ((scope !== 'runtime' && scope !== 'permanent') || (kind !== 'rich-rule' && kind !== 'port') || !zone || !value) {
      unreadable++;
      continue;
    }
    const e: LedgerEntry = { scope, zone, kind, value };
    if (seen.has(ledgerLine(e))) continue;
    seen.add(ledgerLine(e));
    entries.push(e);
  }
  return { entries, unreadable };
}

/**
 * What a rich rule allows, independent of how firewall-cmd prints it (attribute order, a
 * source with or without /32): "ipv4 198.18.0.12 5432/tcp accept".
 */
export function richRuleKey(rule: string): string {
  const attr = (re: RegExp): string => re.exec(rule)?.[1] ?? '';
  const family = attr(/family="([^"]+)"/);
  const src = attr(/source address="([^"]+)"/).replace(/\/(32|128)$/, '');
  const port = attr(/\sport="([^"]+)"/);
  const proto = attr(/protocol="([^"]+)"/);
  const verdict = /\b(accept|reject|drop)\b\s*$/.exec(rule.trim())?.[1] ?? '';
  return `${family} ${src ? ipaddr.process(src).toString() : ''} ${port}/${proto} ${verdict}`;
}

/** richRuleKey plus the protocol of `protocol value="..."` rules (VRRP), which it does not see. */
const ledgerRuleKey = (rule: string): string => `${richRuleKey(rule)} ${/protocol value="([^"]+)"/.exec(rule)?.[1] ?? ''}`;

/** The zone (as firewall-cmd --list-all-zones lists it) has the entry's rule or port. */
export function zoneHas(zones: FirewalldZone[], e: Pick<LedgerEntry, 'zone' | 'kind' | 'value'>): boolean {
  const z = zones.find((x) => x.name === e.zone);
  if (!z) return false;
  if (e.kind === 'port') return z.ports.includes(e.value);
  const k = ledgerRuleKey(e.value);
  return z.richRules.some((r) => ledgerRuleKey(r) === k);
}

export interface FirewalldLedgerFacts {
  /** running: firewall-cmd answers; offline: firewalld stopped, firewall-offline-cmd present; stopped: neither. */
  state: 'running' | 'offline' | 'stopped';
  /** firewall-cmd --list-all-zones (running only). */
  runtime: FirewalldZone[];
  /** firewall-cmd --permanent --list-all-zones, or firewall-offline-cmd --list-all-zones. */
  permanent: FirewalldZone[];
  /** The ledger files that exist, with their text. */
  ledgers: { path: string; text: string }[];
}

/**
 * Uninstall: for every ledger line whose rule firewalld still has, a remove in the same scope;
 * then the ledger goes. Rules not in the ledger (there before ha-setup) are never touched.
 */
export function firewalldLedgerPlan(f: FirewalldLedgerFacts): { actions: Action[]; note: string } {
  if (!f.ledgers.length) {
    return { actions: [], note: f.state === 'running' ? `firewalld: no ledger (${FIREWALLD_LEDGER}): no opening ha-setup added is recorded here; rules found there are left` : '' };
  }
  const parsed = f.ledgers.map((l) => parseLedger(l.text));
  const unreadable = parsed.reduce((n, p) => n + p.unreadable, 0);
  const entries = parseLedger(parsed.flatMap((p) => p.entries.map(ledgerLine)).join('\n')).entries;
  const actions: Action[] = [];
  // One action per rule (zone, kind, value), with a line per scope in which firewalld still has it.
  const rules = new Map<string, { zone: string; kind: LedgerKind; value: string; lines: string[]; scopes: LedgerScope[] }>();
  const removeLine = (e: LedgerEntry): string | null => {
    const opt = option(e.kind, 'remove');
    if (e.scope === 'runtime') return f.state === 'running' && zoneHas(f.runtime, e) ? sh`firewall-cmd --zone=${e.zone} ${opt}=${e.value}` : null;
    if (f.state === 'running') return zoneHas(f.permanent, e) ? sh`firewall-cmd --permanent --zone=${e.zone} ${opt}=${e.value}` : null;
    if (f.state === 'offline') return zoneHas(f.permanent, e) ? sh`firewall-offline-cmd --zone=${e.zone} ${opt}=${e.value}` : null;
    return null;
  };
  for (const e of entries) {
    const line = removeLine(e);
    if (!line) continue;
    const key = `${e.zone}\t${e.kind}\t${e.value}`;
    const r = rules.get(key) ?? { zone: e.zone, kind: e.kind, value: e.value, lines: [], scopes: [] };
    r.lines.push(line);
    r.scopes.push(e.scope);
    rules.set(key, r);
  }
  for (const r of rules.values()) {
    const what = r.kind === 'port' ? `port ${r.value}` : `rich rule ${r.value}`;
    actions.push({ kind: 'run', title: `firewalld: delete ${what} from zone ${r.zone} (${r.scopes.join(' and ')})`, script: r.lines.join('\n'), sudo: true });
  }
  const stuck = f.state === 'stopped' ? entries.filter((e) => e.scope === 'permanent') : [];
  if (stuck.length) {
    // /etc/ha-setup goes with the leftovers; the ledger moves to where uninstall keeps things.
    if (f.ledgers.some((l) => l.path === FIREWALLD_LEDGER)) {
      actions.push({
        kind: 'run',
        title: `move ${FIREWALLD_LEDGER} to ${FIREWALLD_LEDGER_KEPT} (its permanent rules cannot be removed while firewalld is stopped)`,
        script: [sh`mkdir -p -- ${dirOf(FIREWALLD_LEDGER_KEPT)}`, sh`(umask 077 && cat -- ${FIREWALLD_LEDGER} >> ${FIREWALLD_LEDGER_KEPT})`, sh`chmod 0600 -- ${FIREWALLD_LEDGER_KEPT}`, sh`rm -f -- ${FIREWALLD_LEDGER}`].join('\n'),
        sudo: true,
      });
    }
    const note = `firewalld is not running and firewall-offline-cmd is missing: ${stuck.length} permanent opening(s) ha-setup added stay in /etc/firewalld, listed in ${FIREWALLD_LEDGER_KEPT}; start firewalld (systemctl start firewalld) or install firewalld's firewall-offline-cmd, then run ha-setup uninstall again`;
    return { actions, note };
  }
  const gone = entries.length - [...rules.values()].reduce((n, r) => n + r.scopes.length, 0);
  const notes = [`firewalld: ${rules.size} opening${rules.size === 1 ? '' : 's'} ha-setup added ${rules.size === 1 ? 'is' : 'are'} removed; rules it found already there are left`];
  if (gone) notes.push(`${gone} line(s) of the ledger name rules firewalld no longer has${f.state === 'running' ? '' : ` (firewalld is not running: its runtime rules went with it)`}`);
  if (unreadable) notes.push(`${unreadable} unreadable line(s) of the ledger ignored`);
  for (const l of f.ledgers) actions.push({ kind: 'run', title: `remove ${l.path} (the ledger of ha-setup's firewalld openings)`, script: sh`rm -f -- ${l.path}`, sudo: true });
  return { actions, note: notes.join('; ') };
}
