import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTransportPool, mergeSshSettings, resolveSshOptions } from '../../source/transport/connect.js';
import { expandSshPath, lookupSshConfig, parseProxyJump, parseSshConfig } from '../../source/transport/ssh-config.js';
import { Secret } from '../../source/engine/shell.js';

const CONFIG = `
Host 198.18.0.11 db1
  HostName 198.18.0.11
  User admin
  Port 2222
  IdentityFile ~/.ssh/id_%h
  IdentityFile "/keys/with space/%r_key"
  ProxyJump bastion
  UserKnownHostsFile ~/.ssh/kh_cluster ~/.ssh/kh_other
  HashKnownHosts yes
  StrictHostKeyChecking accept-new
  ConnectTimeout 7

Host bastion
  HostName 198.18.0.2
  User jumper
  Port 2200

Host 198.18.0.12
  HostName %h.lab.internal

Match exec "touch ${join(tmpdir(), 'ha-setup-match-exec-ran')}"
  User hacked

Host *
  User fallback
`;

describe('ssh config lookup', () => {
  test('first value wins, lists accumulate, tokens left for later', () => {
    const c = lookupSshConfig(parseSshConfig(CONFIG), '198.18.0.11');
    assert.equal(c.hostName, '198.18.0.11');
    assert.equal(c.user, 'admin');
    assert.equal(c.port, 2222);
    assert.deepEqual(c.identityFiles, ['~/.ssh/id_%h', '/keys/with space/%r_key']);
    assert.equal(c.proxyJump, 'bastion');
    assert.deepEqual(c.userKnownHostsFiles, ['~/.ssh/kh_cluster', '~/.ssh/kh_other']);
    assert.equal(c.hashKnownHosts, true);
    assert.equal(c.strictHostKeyChecking, 'accept-new');
    assert.equal(c.connectTimeoutMs, 7000);
  });

  test('HostName %h, the catch-all Host *, and Match exec never runs', () => {
    const marker = join(tmpdir(), 'ha-setup-match-exec-ran');
    rmSync(marker, { force: true });
    const c = lookupSshConfig(parseSshConfig(CONFIG), '198.18.0.12');
    assert.equal(c.hostName, '198.18.0.12.lab.internal');
    assert.equal(c.user, 'fallback');
    assert.equal(c.port, undefined);
    assert.equal(existsSync(marker), false, 'Match exec must not run a command');
    assert.deepEqual(lookupSshConfig(null, 'x'), { identityFiles: [], userKnownHostsFiles: [] });
  });

  test('a bad Port is a one-line error naming the host', () => {
    assert.throws(() => lookupSshConfig(parseSshConfig('Host x\n  Port http\n'), 'x'), /Port "http" for x is not a port number/);
  });

  test('expandSshPath: ~ and %h %n %p %r %u %d %%', () => {
    const ctx = { host: 'db.lab', originalHost: 'db1', port: 2222, user: 'admin', localUser: 'me', home: '/home/me' };
    assert.equal(expandSshPath('~/.ssh/id_%h', ctx), '/home/me/.ssh/id_db.lab');
    assert.equal(expandSshPath('%d/keys/%r@%n:%p-%u-100%%', ctx), '/home/me/keys/admin@db1:2222-me-100%');
    assert.equal(expandSshPath('/abs/~/x', ctx), '/abs/~/x');
    assert.equal(expandSshPath('%C', ctx), '%C');
  });

  test('parseProxyJump: user, port, IPv6, URI form, chains, errors', () => {
    assert.deepEqual(parseProxyJump('admin@bastion:2200'), [{ user: 'admin', host: 'bastion', port: 2200 }]);
    assert.deepEqual(parseProxyJump('bastion'), [{ host: 'bastion' }]);
    assert.deepEqual(parseProxyJump('ssh://u@[fd00::1]:22'), [{ user: 'u', host: 'fd00::1', port: 22 }]);
    assert.deepEqual(parseProxyJump('a, b@c:3'), [{ host: 'a' }, { user: 'b', host: 'c', port: 3 }]);
    assert.throws(() => parseProxyJump('a:b:c'), /ProxyJump "a:b:c" is not \[user@\]host\[:port\]/);
    assert.throws(() => parseProxyJump('a:70000'), /port 70000 is out of range/);
  });
});

describe('resolveSshOptions: per-host > cluster > ssh config > defaults', () => {
  let home = '';
  const env = () => ({ HOME: home, USER: 'me', SSH_AUTH_SOCK: '/run/agent.sock' });
  before(() => {
    home = mkdtempSync(join(tmpdir(), 'ha-setup-home-'));
    mkdirSync(join(home, '.ssh'));
    writeFileSync(join(home, '.ssh', 'config'), CONFIG);
    writeFileSync(join(home, '.ssh', 'id_ecdsa'), 'not read here');
    writeFileSync(join(home, '.ssh', 'id_rsa'), 'not read here');
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  test('defaults when nothing is configured: root, 22, existing default keys, ~/.ssh/known_hosts', () => {
    const o = resolveSshOptions({ alias: 'app1', address: '198.18.0.31' }, { configFile: join(home, 'none') }, { env: env() });
    assert.equal(o.name, 'app1');
    assert.equal(o.host, '198.18.0.31');
    assert.equal(o.user, 'root');
    assert.equal(o.port, 22);
    assert.deepEqual(o.identityFiles, [join(home, '.ssh/id_ecdsa'), join(home, '.ssh/id_rsa')]);
    assert.equal(o.identityExplicit, false);
    assert.deepEqual(o.knownHostsFiles, [join(home, '.ssh/known_hosts'), '/etc/ssh/ssh_known_hosts']);
    assert.equal(o.agent, '/run/agent.sock');
    assert.equal(o.acceptNewHostKeys, false);
    assert.equal(o.jump, undefined);
  });

  test('the ssh config applies below the settings, with tokens expanded; its jump host is resolved too', () => {
    const o = resolveSshOptions({ alias: 'db_primary', address: '198.18.0.11' }, {}, { env: env() });
    assert.equal(o.user, 'admin');
    assert.equal(o.port, 2222);
    assert.deepEqual(o.identityFiles, [join(home, '.ssh/id_198.18.0.11'), '/keys/with space/admin_key']);
    assert.deepEqual(o.knownHostsFiles, [join(home, '.ssh/kh_cluster'), join(home, '.ssh/kh_other'), '/etc/ssh/ssh_known_hosts']);
    assert.equal(o.hashKnownHosts, true);
    assert.equal(o.acceptNewHostKeys, true, 'StrictHostKeyChecking accept-new');
    assert.equal(o.connectTimeoutMs, 7000);
    assert.equal(o.jump?.host, '198.18.0.2');
    assert.equal(o.jump?.user, 'jumper');
    assert.equal(o.jump?.port, 2200);

    const s = resolveSshOptions(
      { alias: 'db_primary', address: '198.18.0.11' },
      { user: 'deploy', port: 22, identity: '~/keys/cluster', knownHosts: '~/kh', proxyJump: 'ops@198.18.0.3' },
      { env: env(), password: new Secret('ssh password', 'pw-1234') },
    );
    assert.equal(s.user, 'deploy');
    assert.equal(s.port, 22);
    assert.deepEqual(s.identityFiles, [join(home, 'keys/cluster')]);
    assert.equal(s.identityExplicit, true);
    assert.deepEqual(s.knownHostsFiles, [join(home, 'kh')]);
    assert.equal(s.password?.reveal(), 'pw-1234');
    assert.equal(s.jump?.host, '198.18.0.3');
    assert.equal(s.jump?.user, 'ops');
    assert.equal(s.jump?.port, 22);
    assert.deepEqual(s.jump?.identityFiles, [join(home, 'keys/cluster')], 'ssh.identity also serves the jump host');
    assert.equal(s.jump?.password, undefined, 'the password is for the target only');
  });

  test('a jump chain a,b dials a first; the jump user defaults to the local user', () => {
    const o = resolveSshOptions({ alias: 'x', address: '198.18.0.40' }, { proxyJump: '198.18.0.5,bastion', configFile: join(home, '.ssh', 'config') }, { env: env() });
    assert.equal(o.jump?.host, '198.18.0.2', 'the last hop connects to the target');
    assert.equal(o.jump?.jump?.host, '198.18.0.5');
    assert.equal(o.jump?.jump?.user, 'fallback', 'Host * in the config');
    const none = resolveSshOptions({ alias: 'x', address: '198.18.0.40' }, { proxyJump: '198.18.0.5', configFile: join(home, 'none') }, { env: env() });
    assert.equal(none.jump?.user, 'me');
  });

  test('mergeSshSettings: ssh.hosts.<alias> overrides the cluster values it sets, and only those', () => {
    const ssh = { user: 'admin', port: 22, identity: '/k', hosts: { db_primary: { port: 2222, user: undefined } } };
    assert.deepEqual(mergeSshSettings(ssh, 'db_primary'), { user: 'admin', port: 2222, identity: '/k' });
    assert.deepEqual(mergeSshSettings(ssh, 'app1'), { user: 'admin', port: 22, identity: '/k' });
    assert.deepEqual(mergeSshSettings(undefined, 'app1'), {});
  });

  test('createTransportPool: one transport per alias, per-host settings applied, closeAll empties it', async () => {
    const pool = createTransportPool(
      { user: 'admin', knownHosts: join(home, 'kh'), configFile: join(home, 'none'), hosts: { db_standby: { user: 'postgres-admin' } } },
      { env: env() },
    );
    const a = pool.get({ alias: 'db_primary', address: '198.18.0.11' });
    const b = pool.get({ alias: 'db_primary', address: '198.18.0.11' });
    const c = pool.get({ alias: 'db_standby', address: '198.18.0.12' });
    assert.equal(a, b);
    assert.notEqual(a, c);
    assert.equal(a.user, 'admin');
    assert.equal(c.user, 'postgres-admin');
    assert.equal(pool.size, 2);
    await pool.closeAll(); // never connected: closing is a no-op, but must not throw
    assert.equal(pool.size, 0);
    assert.notEqual(pool.get({ alias: 'db_primary', address: '198.18.0.11' }), a);
  });
});
