/**
 * The replication key pair of an NFS server, derived from a generated secret: the server
 * builds its private key from the secret (assets/nfs/replication-key.sh, the secret on stdin),
 * and the jump host computes the public key for the peer's authorized_keys from the same
 * secret. The private key is never sent, printed or stored anywhere but on its server.
 */
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import type { HostContext } from '../../source/engine/step.js';
import type { Secret } from '../../source/engine/shell.js';

/** PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The secret a server's key is derived from (one per NFS node, by alias). */
export function replicationSecret(ctx: Pick<HostContext, 'secret'>, alias: string): Secret {
  return ctx.secret(`nfs-replication-key-${alias}`);
}

/** The OpenSSH public key ("ssh-ed25519 AAAA... comment") for a seed text. */
export function publicKeyFromSeed(seed: string, comment: string): string {
  const der = Buffer.concat([ED25519_PKCS8_PREFIX, createHash('sha256').update(seed).digest()]);
  const spki = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
  const raw = spki.subarray(spki.length - 32);
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  const blob = Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
  return `ssh-ed25519 ${blob.toString('base64')} ${comment}`;
}

/** The comment of a node's replication key (also how its authorized_keys line is found). */
export const keyComment = (alias: string): string => `ha-setup-nfs-replication@${alias}`;

/** The public key of the NFS node `alias`, as its peer must trust it. */
export function replicationPublicKey(ctx: Pick<HostContext, 'secret'>, alias: string): string {
  return publicKeyFromSeed(replicationSecret(ctx, alias).reveal(), keyComment(alias));
}
