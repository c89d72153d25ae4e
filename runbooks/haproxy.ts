/**
 * Topology A: HAProxy on the lb in front of app1..appN (the guide's "HAProxy for the app"):
 * TLS passed through in TCP mode on 8181, round robin, sticky on the TLS session id, health
 * checks, redispatch with 2 retries, a stats page with a generated password on an admin
 * address, haproxy -c before every install or reload, the port opened with the host's
 * firewall tool. Every app server of the table is a backend: adding app3 adds it in one run.
 * With a standby load balancer (lb_standby, lb_vip) both get the same config and share the
 * stick table (HAProxy peers); the keepalived runbook moves lb_vip between them.
 */
import ipaddr from 'ipaddr.js';
import type { HostContext, Runbook } from '../source/engine/step.js';
import { appServers, dbRoutingEnabled, haproxyOptions, lbServers } from './lib/haproxy-config.js';
import { addressesFor, configStep, firewallStep, installStep, lbTarget, selinuxStep, serviceStep, type PortRule } from './lib/haproxy-steps.js';
import type { Resolved } from './lib/pg-facts.js';

const P = 'haproxy';

/** 8181 from anywhere (the app's clients); the stats port too when it is not on loopback. */
export function appFirewallRules(ctx: { options: Record<string, unknown> }): PortRule[] {
  const o = haproxyOptions(ctx.options);
  const loopback = ipaddr.process(o.statsAddress).range() === 'loopback';
  return [{ port: o.appPort, from: 'any' as const }, ...(loopback ? [] : [{ port: o.statsPort, from: 'any' as const }])];
}

/** The lb when the table has app servers; an lb that only routes the database (db-routing) has nothing here. */
function appTargets(ctx: { hosts: Record<string, unknown>; options: Record<string, unknown> }): string[] {
  if (lbTarget(ctx).length === 0) return [];
  if (appServers(ctx as Parameters<typeof appServers>[0]).length === 0) {
    if (dbRoutingEnabled(ctx.options)) return [];
    throw new Error('runbook haproxy: the server table has an lb but no app servers (app1, app2, ...); add them to servers:');
  }
  return lbTarget(ctx);
}

/** With a standby load balancer: both, each opening the peers port to the other. */
function peerTargets(ctx: { hosts: Record<string, unknown>; options: Record<string, unknown> }): string[] {
  return lbServers(ctx as Parameters<typeof lbServers>[0]).length === 2 ? appTargets(ctx) : [];
}

/** The peers port from the other load balancer (the stick table is shared between the two). */
export function peerFirewallRules(ctx: HostContext, resolved: Resolved): PortRule[] {
  const other = ctx.host.alias === 'lb' ? 'lb_standby' : 'lb';
  return [{ port: haproxyOptions(ctx.options).peersPort, from: addressesFor(ctx, resolved, [other]) }];
}

export const haproxyRunbook: Runbook = {
  id: 'haproxy',
  title: 'HAProxy load balancer for the app servers (topology A)',
  description:
    "The guide's HAProxy for the app: frontend https-in (TCP, bind *:8181), backend app with balance roundrobin and the TLS-session-id stick table, one server line with check per app server, option redispatch + retries 2, a stats page with a generated password, haproxy -c -f before every reload, 8181 opened in the firewall.",
  steps: [
    { ...installStep(P), targets: appTargets },
    { ...selinuxStep(P), targets: appTargets },
    { ...configStep(P), targets: appTargets },
    { ...serviceStep(P), targets: appTargets },
    firewallStep(P, { title: 'Firewall: the app port (8181) open on the lb', targets: appTargets, rules: (ctx) => appFirewallRules(ctx) }),
    firewallStep(`${P}.peers`, { title: 'Firewall: the stick-table peers port (10000) between lb and lb_standby', targets: peerTargets, rules: peerFirewallRules }),
  ],
};
