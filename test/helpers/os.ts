/** This machine's /etc/os-release, parsed the way the OS fact parses a server's. */
import { readFileSync } from 'node:fs';
import { parseOsRelease } from '../../runbooks/lib/host-facts.js';

export function readOsRelease(): Record<string, string> {
  return parseOsRelease(readFileSync('/etc/os-release', 'utf8'));
}
