/**
 * The lab network on the machine: one bridge (halab0, 198.18.0.1/24, no IPv6) that the hosts'
 * veths join (systemd-nspawn --network-bridge creates vb-<host> per boot and removes it when
 * the host stops). The bridge's alias records which lab directory owns it.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { BRIDGE, MACHINE_ADDRESS, PREFIX, vethName } from './layout.js';
import { must, run } from './exec.js';

const OWNER_PREFIX = 'ha-setup lab ';

export function bridgeExists(): boolean {
  return existsSync(`/sys/class/net/${BRIDGE}`);
}

/** The lab directory that created the bridge, or undefined (no bridge, or not ours). */
export function bridgeOwner(): string | undefined {
  try {
    const alias = readFileSync(`/sys/class/net/${BRIDGE}/ifalias`, 'utf8').trim();
    return alias.startsWith(OWNER_PREFIX) ? alias.slice(OWNER_PREFIX.length) : undefined;
  } catch {
    return undefined;
  }
}

export async function ensureBridge(owner: string): Promise<void> {
  if (!bridgeExists()) {
    await must('ip', ['link', 'add', 'name', BRIDGE, 'type', 'bridge']);
  }
  await must('ip', ['link', 'set', 'dev', BRIDGE, 'alias', `${OWNER_PREFIX}${owner}`]);
  writeFileSync(`/proc/sys/net/ipv6/conf/${BRIDGE}/disable_ipv6`, '1');
  const addrs = await must('ip', ['-o', '-4', 'addr', 'show', 'dev', BRIDGE]);
  if (!addrs.includes(` ${MACHINE_ADDRESS}/${PREFIX} `)) {
    await must('ip', ['addr', 'add', `${MACHINE_ADDRESS}/${PREFIX}`, 'dev', BRIDGE]);
  }
  await must('ip', ['link', 'set', 'dev', BRIDGE, 'up']);
}

export async function removeBridge(): Promise<void> {
  if (bridgeExists()) await must('ip', ['link', 'del', 'dev', BRIDGE]);
}

/** State of a host's link on the machine side: absent (host stopped), up, or down (cut). */
export function linkState(host: string): 'absent' | 'up' | 'down' {
  const dev = vethName(host);
  try {
    const flags = Number(readFileSync(`/sys/class/net/${dev}/flags`, 'utf8'));
    return flags & 1 ? 'up' : 'down';
  } catch {
    return 'absent';
  }
}

export async function setLink(host: string, up: boolean): Promise<void> {
  const dev = vethName(host);
  if (!existsSync(`/sys/class/net/${dev}`)) throw new Error(`${host}: no link ${dev} (is the host running?)`);
  await must('ip', ['link', 'set', 'dev', dev, up ? 'up' : 'down']);
}

/** A leftover veth of a host (only when its nspawn died without cleaning up). */
export async function removeVeth(host: string): Promise<void> {
  if (existsSync(`/sys/class/net/${vethName(host)}`)) await run('ip', ['link', 'del', 'dev', vethName(host)]);
}

/** Names of the lab's interfaces present on the machine (for checks after lab down). */
export function labInterfaces(): string[] {
  try {
    return readdirSync('/sys/class/net').filter((n) => n === BRIDGE || n.startsWith('vb-'));
  } catch {
    return [];
  }
}
