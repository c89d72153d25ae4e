/**
 * SELinux booleans: the mode (enforcing, permissive, disabled, or absent when SELinux is not
 * installed, as on Debian) and the value of one boolean, read with getenforce/getsebool.
 * The runbooks set the boolean a service needs instead of suggesting permissive mode.
 */
import { quote } from '../../source/engine/shell.js';
import { done, type Action, type FactDef, type Plan } from '../../source/engine/step.js';
import { parseKv } from './pg-facts.js';

export interface SelinuxBool {
  mode: 'enforcing' | 'permissive' | 'disabled' | 'absent';
  /** null: the policy has no such boolean. */
  value: boolean | null;
}

export function parseSelinuxBool(stdout: string): SelinuxBool {
  const kv = parseKv(stdout);
  const mode = (kv.SELINUX ?? 'absent').toLowerCase();
  const b = /-->\s*(on|off)/.exec(kv.BOOL ?? '')?.[1];
  return { mode: mode === 'enforcing' || mode === 'permissive' || mode === 'disabled' ? mode : 'absent', value: b === undefined ? null : b === 'on' };
}

export function selinuxBoolFact(name: string): FactDef<SelinuxBool> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`bug: "${name}" is not an SELinux boolean name`);
  return {
    id: `selinux-bool-${name}`,
    sudo: true,
    script: [
      'if command -v getenforce >/dev/null 2>&1; then echo "SELINUX=$(getenforce 2>/dev/null || true)"; else echo SELINUX=absent; fi',
      `if command -v getsebool >/dev/null 2>&1; then echo "BOOL=$(getsebool ${quote(name)} 2>/dev/null || true)"; fi`,
    ].join('\n'),
    parse: parseSelinuxBool,
  };
}

/** The plan that turns a boolean on (persistently), or says why nothing is needed. */
export function selinuxBoolPlan(se: SelinuxBool, name: string, why: string): Plan {
  if (se.mode === 'absent' || se.mode === 'disabled') return done(`SELinux is ${se.mode === 'absent' ? 'not installed' : 'disabled'}: ${name} is not needed`);
  if (se.value === true) return done(`SELinux ${se.mode}: ${name} is on`);
  if (se.value === null) return done(`SELinux ${se.mode}, but its policy has no ${name} boolean: nothing to set`);
  const action: Action = { kind: 'run', title: `setsebool -P ${name} 1`, script: `setsebool -P ${quote(name)} 1`, sudo: true };
  return { actions: [action], reason: `SELinux is ${se.mode}: ${why} (the boolean, not permissive mode)` };
}
