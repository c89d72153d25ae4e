/**
 * VRRP (IP protocol 112) from the peer through the host firewall, in the tool that filters
 * incoming traffic there (the same choice as the PostgreSQL port rules: firewalld, ufw, nftables,
 * iptables, or none). Only the peer's address is allowed; the rules carry ha-setup-vrrp's
 * comment so that a changed peer address replaces them.
 */
import ipaddr from 'ipaddr.js';
import { sh } from '../../source/engine/shell.js';
import { done, type Action, type Plan } from '../../source/engine/step.js';
import { firewalldAddScript } from './firewalld-ledger.js';
import { NFT_VRRP, VRRP_COMMENT, type VrrpFirewallFacts } from './keepalived-facts.js';
import { adminInputChains, firewallTool, interfaceFor, restrictive, type FirewallFacts, type NetFacts } from './pg-facts.js';

const isV6 = (ip: string): boolean => ipaddr.parse(ip).kind() === 'ipv6';
const cidr = (ip: string): string => `${ip}/${isV6(ip) ? 128 : 32}`;
const bare = (s: string): string => s.replace(/\/(32|128)$/, '');

export function firewalldRichRule(peer: string): string {
  return `rule family="${isV6(peer) ? 'ipv6' : 'ipv4'}" source address="${cidr(peer)}" protocol value="vrrp" accept`;
}

/** A rich rule allows VRRP from this peer (however firewall-cmd formats it). */
export function allowsVrrpFrom(rule: string, peer: string): boolean {
  const src = /source address="([^"]+)"/.exec(rule)?.[1];
  return /protocol value="(vrrp|112)"/.test(rule) && /\baccept\s*$/.test(rule.trim()) && src !== undefined && bare(src) === peer;
}

function nftMatch(peer: string): string {
  return isV6(peer) ? `ip6 saddr ${peer} meta l4proto vrrp` : `ip saddr ${peer} ip protocol vrrp`;
}

export function nftVrrpFile(chains: { family: string; table: string; name: string }[], peer: string): string {
  const lines = chains.map((c) => `insert rule ${c.family} ${c.table} ${c.name} ${nftMatch(peer)} accept comment "${VRRP_COMMENT}"`);
  return `# Managed by ha-setup (runbook keepalived): VRRP from the peer through input chains that drop by default.\n${lines.join('\n')}\n`;
}

export function vrrpFirewallPlan(fw: FirewallFacts, vrrp: VrrpFirewallFacts, net: NetFacts, peer: string, alias: string): Plan {
  const tool = firewallTool(fw);
  const actions: Action[] = [];
  switch (tool) {
    case 'none':
      return done(`no firewall filters incoming traffic here (no running firewalld, active ufw, nftables ruleset or iptables DROP rule): VRRP from ${peer} passes`);
    case 'firewalld': {
      const iface = interfaceFor(net.addresses, peer);
      const zone = fw.firewalld.runtime.find((z) => iface && z.interfaces.includes(iface))?.name ?? fw.firewalld.defaultZone;
      if (!zone) throw new Error(`${alias}: firewalld runs but reports no zone for ${iface ?? peer} and no default zone`);
      const rule = firewalldRichRule(peer);
      const has = (zones: FirewallFacts['firewalld']['runtime']): boolean => (zones.find((z) => z.name === zone)?.richRules ?? []).some((r) => allowsVrrpFrom(r, peer));
      const lines = [
        ...(has(fw.firewalld.runtime) ? [] : [firewalldAddScript({ scope: 'runtime', zone, kind: 'rich-rule', value: rule })]),
        ...(has(fw.firewalld.permanent) ? [] : [firewalldAddScript({ scope: 'permanent', zone, kind: 'rich-rule', value: rule })]),
      ];
      if (lines.length) actions.push({ kind: 'run', title: `firewalld zone ${zone}: allow VRRP from ${peer}`, script: lines.join('\n'), sudo: true });
      return actions.length ? { actions, reason: `firewalld zone ${zone}` } : done(`firewalld zone ${zone} allows VRRP from ${peer}`);
    }
    case 'ufw': {
      const ours = fw.ufw.rules.filter((r) => r.comment === VRRP_COMMENT);
      if (!ours.some((r) => bare(r.src) === peer && r.proto === 'vrrp')) {
        actions.push({ kind: 'run', title: `ufw: allow VRRP from ${peer}`, script: sh`ufw allow proto vrrp from ${peer} comment ${VRRP_COMMENT}`, sudo: true });
      }
      for (const r of ours.filter((x) => bare(x.src) !== peer)) {
        actions.push({ kind: 'run', title: `ufw: remove the VRRP rule for ${r.src} (no longer the peer)`, script: sh`ufw delete allow proto vrrp from ${r.src}`, sudo: true });
      }
      return actions.length ? { actions, reason: 'ufw rules persist by themselves' } : done(`ufw allows VRRP from ${peer}`);
    }
    case 'nftables': {
      const chains = adminInputChains(fw).filter(restrictive).filter((c) => c.family !== (isV6(peer) ? 'ip' : 'ip6'));
      for (const c of chains) {
        const mine = vrrp.nft.filter((r) => r.family === c.family && r.table === c.table && r.chain === c.name);
        if (!mine.some((r) => r.source === peer)) {
          actions.push({ kind: 'run', title: `nft: allow VRRP from ${peer} in ${c.family} ${c.table} ${c.name}`, script: `nft insert rule ${c.family} ${c.table} ${c.name} ${nftMatch(peer)} accept comment ${sh`${`"${VRRP_COMMENT}"`}`}`, sudo: true });
        }
        for (const r of mine.filter((x) => x.source !== peer)) {
          actions.push({ kind: 'run', title: `nft: remove the VRRP rule for ${r.source} in ${c.family} ${c.table} ${c.name}`, script: sh`nft delete rule ${c.family} ${c.table} ${c.name} handle ${r.handle}`, sudo: true });
        }
      }
      if (chains.length === 0) return done(`no nftables input chain drops by default: VRRP from ${peer} passes`);
      const content = nftVrrpFile(chains, peer);
      if (fw.nft.conf !== null) {
        if (vrrp.nftFile !== content) actions.push({ kind: 'write', title: `write ${NFT_VRRP} (read at boot)`, path: NFT_VRRP, content, mode: 0o644, owner: 'root', group: 'root', previous: vrrp.nftFile });
        if (!fw.nft.conf.includes(`include "${NFT_VRRP}"`)) {
          const text = `\n# Added by ha-setup (keepalived): VRRP from the peer.\ninclude "${NFT_VRRP}"\n`;
          actions.push({ kind: 'run', title: `add include ${NFT_VRRP} to /etc/nftables.conf (boot)`, script: sh`printf '%s' ${text} >> /etc/nftables.conf`, sudo: true });
        }
      }
      const note = fw.nft.conf === null ? '; no /etc/nftables.conf: the rules last until reboot' : '';
      return actions.length ? { actions, reason: `input chains that drop by default: ${chains.map((c) => `${c.family} ${c.table} ${c.name}`).join(', ')}${note}` } : done(`nftables lets VRRP from ${peer} through${note}`);
    }
    case 'iptables': {
      const tool6 = isV6(peer);
      const cmd = tool6 ? 'ip6tables' : 'iptables';
      const ours = tool6 ? vrrp.ip6tables : vrrp.iptables;
      const srcOf = (r: string): string => bare(/-s (\S+)/.exec(r)?.[1] ?? '');
      if (!ours.some((r) => srcOf(r) === peer)) {
        actions.push({ kind: 'run', title: `${cmd}: allow VRRP from ${peer}`, script: sh`${cmd} -I INPUT -s ${cidr(peer)} -p 112 -m comment --comment ${VRRP_COMMENT} -j ACCEPT`, sudo: true });
      }
      for (const r of ours.filter((x) => srcOf(x) !== peer)) {
        actions.push({ kind: 'run', title: `${cmd}: remove the VRRP rule for ${srcOf(r)}`, script: `${cmd} ${r.replace(/^-A /, '-D ')}`, sudo: true });
      }
      if (actions.length && fw.iptables.persist === 'debian') {
        actions.push({ kind: 'run', title: 'save the rules (/etc/iptables/rules.v4, rules.v6)', script: 'iptables-save > /etc/iptables/rules.v4\nif [ -f /etc/iptables/rules.v6 ]; then ip6tables-save > /etc/iptables/rules.v6; fi', sudo: true });
      } else if (actions.length && fw.iptables.persist === 'rhel') {
        actions.push({ kind: 'run', title: 'save the rules (/etc/sysconfig/iptables)', script: 'iptables-save > /etc/sysconfig/iptables\nif [ -f /etc/sysconfig/ip6tables ]; then ip6tables-save > /etc/sysconfig/ip6tables; fi', sudo: true });
      }
      const note = fw.iptables.persist === null ? '; no iptables-persistent or iptables-services: the rule lasts until reboot' : '';
      return actions.length ? { actions, reason: `iptables${note}` } : done(`iptables accepts VRRP from ${peer}${note}`);
    }
  }
}
