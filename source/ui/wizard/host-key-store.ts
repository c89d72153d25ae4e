/**
 * Unknown host keys met while hosts connect in parallel, asked one at a time in the Ink UI
 * (what ConnectOptions.onUnknownHostKey calls). No Ink here.
 */
import type { UnknownHostKey } from '../../transport/ssh.js';

export interface HostKeyStore {
  ask(key: UnknownHostKey): Promise<boolean>;
  /** The key asked about now, if any. */
  getPending(): UnknownHostKey | undefined;
  answer(trust: boolean): void;
  subscribe(listener: () => void): () => void;
}

export function createHostKeyStore(): HostKeyStore {
  const queue: { key: UnknownHostKey; resolve(trust: boolean): void }[] = [];
  const listeners = new Set<() => void>();
  const tell = () => listeners.forEach((l) => l());
  return {
    ask(key) {
      return new Promise((resolve) => {
        queue.push({ key, resolve });
        if (queue.length === 1) tell();
      });
    },
    getPending: () => queue[0]?.key,
    answer(trust) {
      const head = queue.shift();
      if (!head) return;
      tell();
      head.resolve(trust);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
