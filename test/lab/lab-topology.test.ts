/**
 * The lab as the topology-A server table (7 hosts named as the roles), NFS served by
 * nfs-ganesha from /srv/nfs, `lab up` idempotence, and one lab per machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { parse } from 'yaml';
import { useLab } from '../helpers/lab.js';
import { fault, labUp, waitHostReady } from '../../source/lab/index.js';
import { hostProcesses } from '../../source/lab/hosts.js';
import { labLayout } from '../../source/lab/layout.js';

const fixture = useLab({ topology: 'lb' });
const fixtureTable = parse(readFileSync(new URL('../../../test/fixtures/cluster-lb.yaml', import.meta.url), 'utf8'));

test('--topology lb: the roles of test/fixtures/cluster-lb.yaml, each a host that answers as itself', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const table = parse(readFileSync(lab.info.tableFile, 'utf8'));
  assert.deepEqual(table.servers, fixtureTable.servers);
  assert.equal(table.topology, 'lb');
  assert.deepEqual(table.network, { prefix: 24 });
  assert.equal(lab.info.hosts.length, 7);
  for (const h of lab.info.hosts) {
    const out = await lab.sh(h, 'hostname; ip -o -4 addr show dev host0 | grep -o "inet [0-9./]*"');
    assert.equal(out, `${h.alias.replace(/_/g, '-')}\ninet ${h.address}/24\n`);
  }
});

test('nfs-ganesha exports /srv/nfs; clients read and write it; the data survives a reboot', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const server = lab.host('nfs_primary');
  const conf = [
    'NFS_CORE_PARAM { Protocols = 3, 4; }',
    'NFSV4 { Grace_Period = 10; Lease_Lifetime = 10; }',
    'EXPORT { Export_Id = 1; Path = /srv/nfs; Pseudo = /srv/nfs; Access_Type = RW; Squash = No_Root_Squash;',
    '  Protocols = 3, 4; Transports = TCP; FSAL { Name = VFS; } }',
  ].join('\n');
  await lab.sh(server, `cat > /etc/ganesha/ganesha.conf <<'EOF'\n${conf}\nEOF\necho from-server > /srv/nfs/a.txt\n: > /var/log/ganesha/ganesha.log\nsystemctl restart rpcbind nfs-ganesha`);
  const url = `nfs://${server.address}/srv/nfs`;
  // The server needs a moment after start; libnfs retries are ours.
  await lab.sh('app1', `for i in $(seq 50); do nfs-cat ${url}/a.txt && exit 0; sleep 0.2; done; exit 1`);
  assert.equal(await lab.sh('app1', `nfs-cat ${url}/a.txt`), 'from-server\n');
  // Creating files waits for the end of the grace period (10 s; NFS3ERR_JUKEBOX until then).
  await lab.sh(server, `for i in $(seq 100); do grep -q 'NOT IN GRACE' /var/log/ganesha/ganesha.log && exit 0; sleep 0.2; done; exit 1`);
  await lab.sh('app2', `echo from-app2 > /tmp/b.txt && nfs-cp /tmp/b.txt ${url}/b.txt`);
  assert.equal(await lab.sh(server, 'cat /srv/nfs/b.txt'), 'from-app2\n');
  await fault('nfs_primary', 'reboot', undefined, { env: lab.env });
  await waitHostReady('nfs_primary', 60_000, { env: lab.env });
  assert.equal(await lab.sh(server, 'cat /srv/nfs/a.txt /srv/nfs/b.txt'), 'from-server\nfrom-app2\n');
});

test('lab up again is idempotent: reported, nothing restarted', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const layout = labLayout(lab.env);
  const before = lab.info.hosts.map((h) => hostProcesses(layout, h.name).launcher);
  const r = await lab.cli(['lab', 'up', '--topology', 'lb']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^lab already up \(7 hosts/);
  assert.match(r.stdout, /server table: .*lab\.yaml\nssh key: .*id_ed25519\nknown_hosts: .*known_hosts\n/);
  const plain = await lab.cli(['lab', 'up']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^lab already up \(7 hosts/);
  assert.deepEqual(lab.info.hosts.map((h) => hostProcesses(layout, h.name).launcher), before);
  // Asking for a part of the running lab (the first 3 roles) reports the lab as it is.
  const part = await lab.cli(['lab', 'up', '--hosts', '3']);
  assert.equal(part.code, 0, part.stderr);
  assert.match(part.stdout, /^lab already up \(7 hosts/);
  // A shape that is not a part of it (k8s_master instead of lb) is refused.
  const other = await lab.cli(['lab', 'up', '--topology', 'k8s']);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /the lab is up with 7 hosts .* run ha-setup lab down first/);
});

test('one lab per machine: a second lab directory is refused while this one is up', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const dir = mkdtempSync('/tmp/ha-setup-lab-other-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await assert.rejects(
    labUp({ hosts: 1, env: { ...lab.env, HA_SETUP_LAB_DIR: dir } }),
    new RegExp(`another lab is up on this machine \\(from ${lab.info.dir}\\); stop it first: HA_SETUP_LAB_DIR=${lab.info.dir} ha-setup lab down`),
  );
});
