/**
 * Whether a run may draw an interactive screen. No Ink here: commands import this to decide,
 * and load the Ink UI only when the answer is yes.
 */
type Stream = { isTTY?: boolean };

/** CI as is-in-ci (and so Ink) sees it: CI, CONTINUOUS_INTEGRATION or CI_* set, CI not "false"/"0". */
export function isCI(env: NodeJS.ProcessEnv): boolean {
  if (env.CI === 'false' || env.CI === '0') return false;
  return 'CI' in env || 'CONTINUOUS_INTEGRATION' in env || Object.keys(env).some((k) => k.startsWith('CI_'));
}

/** Live output (run view): stdout is a terminal, not CI, not --json. */
export function isInteractive(opts: { stdout: Stream; env: NodeJS.ProcessEnv; json?: boolean }): boolean {
  return Boolean(opts.stdout.isTTY) && !isCI(opts.env) && !opts.json;
}

/** Prompts (wizard, menus): stdin and stdout are terminals and not CI. */
export function canPrompt(opts: { stdin: Stream; stdout: Stream; env: NodeJS.ProcessEnv }): boolean {
  return Boolean(opts.stdin.isTTY) && Boolean(opts.stdout.isTTY) && !isCI(opts.env);
}
