/**
 * The wizard's state and its pure reducer. Screens: pick (new or a saved cluster) -> name ->
 * topology -> servers -> review -> saved. All checking is done by source/inventory (validateField
 * while typing, validateInventory for the review and before saving); nothing is re-implemented here.
 */
import type { Inventory, Topology } from '../../inventory/types.js';
import { appAliases, appNumber, frontAlias, tableAliases } from '../../inventory/roles.js';
import { CLUSTER_NAME_RE, CLUSTER_NAME_RULE } from '../../inventory/schema.js';
import { validateField, validateInventory, type FieldError } from '../../inventory/validate.js';

export type Screen = 'pick' | 'name' | 'topology' | 'servers' | 'review' | 'saved';

export interface WizardState {
  screen: Screen;
  /** Names of the saved clusters (the pick screen lists them). */
  existing: string[];
  cluster: string;
  nameError?: string;
  topology: Topology;
  /** Alias -> address as typed (trimmed on save by validateInventory). */
  servers: Record<string, string>;
  /** App servers listed (at least 2). */
  appCount: number;
  /** Index of the focused alias in aliasesOf(state). */
  focus: number;
  /** The alias being edited and its text. */
  editing?: { alias: string; draft: string };
  /** Show "not set" errors too (after the user asked to review / save once). */
  showMissing: boolean;
  /** What a loaded cluster had besides the servers: kept as is. */
  base: Pick<Inventory, 'ssh' | 'options'> & { network?: Inventory['network'] };
  /** True when editing a saved cluster (its name is fixed). */
  fromSaved: boolean;
  /** A one-line notice (e.g. why Save was refused). */
  notice?: string;
  saved?: { inventory: Inventory; path: string };
}

export type WizardAction =
  | { type: 'new-cluster' }
  | { type: 'load-cluster'; inventory: Inventory }
  | { type: 'notice'; message: string }
  | { type: 'name-change'; value: string }
  | { type: 'name-submit' }
  | { type: 'topology'; topology: Topology }
  | { type: 'move'; delta: number }
  | { type: 'edit-start' }
  /** `alias`: the field the text input belongs to (a change from a field that has just been left is carried over). */
  | { type: 'edit-change'; draft: string; alias?: string }
  /** Keep the draft; then move focus by `move` (0: stay) and keep editing if `continue`. */
  | { type: 'edit-commit'; move: number; continue: boolean }
  | { type: 'edit-cancel' }
  | { type: 'add-app' }
  | { type: 'remove-app' }
  | { type: 'toggle-lb-standby' }
  | { type: 'review' }
  | { type: 'back' }
  | { type: 'save-refused'; errors: number }
  | { type: 'saved'; inventory: Inventory; path: string };

export function initialWizardState(existing: string[] = []): WizardState {
  return {
    screen: 'pick',
    existing,
    cluster: '',
    topology: 'lb',
    servers: {},
    appCount: 2,
    focus: 0,
    showMissing: false,
    base: { ssh: {}, options: {} },
    fromSaved: false,
  };
}

/** The aliases listed on the servers screen, in table order. */
export function aliasesOf(state: Pick<WizardState, 'topology' | 'servers' | 'appCount'>): string[] {
  return tableAliases(state.topology, state.servers, state.appCount);
}

/** Problem with a cluster name, or undefined. */
export function clusterNameError(name: string, existing: string[], fromSaved: boolean): string | undefined {
  const v = name.trim();
  if (v === '') return `give the cluster a name (${CLUSTER_NAME_RULE})`;
  if (!CLUSTER_NAME_RE.test(v)) return `"${v}" is not a valid cluster name: ${CLUSTER_NAME_RULE}`;
  if (!fromSaved && existing.includes(v)) {
    return `a cluster named "${v}" is saved already: pick it from the list to edit it (esc, run ha-setup again), or choose another name`;
  }
  return undefined;
}

/**
 * The inline error of one alias: while editing, of the draft; otherwise of the saved value.
 * An empty field only shows "not set" once showMissing is on.
 */
export function fieldError(state: WizardState, alias: string): string | undefined {
  const value = state.editing?.alias === alias ? state.editing.draft : (state.servers[alias] ?? '');
  if (value.trim() === '' && !state.showMissing) return undefined;
  return validateField(alias, value, state.servers, state.topology, state.base.network?.prefix);
}

/** The table as validateInventory takes it: every listed alias, null where not set. */
export function inventoryInput(state: WizardState): Record<string, unknown> {
  const servers: Record<string, string | null> = {};
  for (const alias of aliasesOf(state)) {
    const v = state.servers[alias];
    servers[alias] = v !== undefined && v.trim() !== '' ? v : null;
  }
  const input: Record<string, unknown> = {
    cluster: state.cluster.trim(),
    topology: state.topology,
    servers,
    ssh: state.base.ssh,
    options: state.base.options,
  };
  if (state.base.network) input.network = state.base.network;
  return input;
}

/** What is saved: the same table without the roles left empty. */
export function tableToSave(state: WizardState): Record<string, unknown> {
  const input = inventoryInput(state);
  const servers = Object.fromEntries(Object.entries(input.servers as Record<string, string | null>).filter(([, v]) => v !== null));
  return { ...input, servers };
}

/** Every remaining problem of the table (empty when it can be saved). */
export function reviewErrors(state: WizardState): FieldError[] {
  const result = validateInventory(inventoryInput(state));
  return result.ok ? [] : result.errors;
}

function commitDraft(state: WizardState): WizardState {
  if (!state.editing) return state;
  const { alias, draft } = state.editing;
  const { editing: _e, ...rest } = state;
  return { ...rest, servers: { ...state.servers, [alias]: draft.trim() } };
}

function clampFocus(state: WizardState, focus: number): number {
  const n = aliasesOf(state).length;
  return Math.max(0, Math.min(n - 1, focus));
}

function startEditing(state: WizardState): WizardState {
  const alias = aliasesOf(state)[state.focus];
  if (alias === undefined) return state;
  return { ...state, editing: { alias, draft: state.servers[alias] ?? '' } };
}

/** Switching topology carries the front-end address over (lb <-> k8s_master). */
function switchTopology(state: WizardState, topology: Topology): WizardState {
  if (topology === state.topology) return state;
  const from = frontAlias(state.topology);
  const to = frontAlias(topology);
  const { [from]: moved, ...servers } = state.servers;
  if (moved !== undefined && (servers[to] ?? '') === '') servers[to] = moved;
  // The standby load balancer and its VIP exist only in topology lb.
  if (topology !== 'lb') for (const a of ['lb_standby', 'lb_vip']) delete servers[a];
  return { ...state, topology, servers };
}

export function reduceWizard(state: WizardState, action: WizardAction): WizardState {
  const { notice: _n, ...s } = state;
  switch (action.type) {
    case 'new-cluster':
      return { ...initialWizardState(s.existing), screen: 'name' };
    case 'load-cluster': {
      const inv = action.inventory;
      const apps = appAliases(inv.servers).map((a) => appNumber(a) ?? 0);
      return {
        ...s,
        screen: 'topology',
        cluster: inv.cluster,
        topology: inv.topology,
        servers: { ...inv.servers },
        appCount: Math.max(2, ...apps),
        base: { ssh: inv.ssh, options: inv.options, ...(inv.network ? { network: inv.network } : {}) },
        fromSaved: true,
      };
    }
    case 'notice':
      return { ...s, notice: action.message };
    case 'name-change': {
      const { nameError: _e, ...rest } = s;
      return { ...rest, cluster: action.value };
    }
    case 'name-submit': {
      const error = clusterNameError(s.cluster, s.existing, s.fromSaved);
      if (error) return { ...s, nameError: error };
      return { ...s, cluster: s.cluster.trim(), screen: 'topology' };
    }
    case 'topology':
      return { ...switchTopology(s, action.topology), screen: 'servers', focus: 0 };
    case 'move':
      return { ...s, focus: clampFocus(s, s.focus + action.delta) };
    case 'edit-start':
      return startEditing(s);
    case 'edit-change': {
      if (!s.editing) return s;
      let draft = action.draft;
      // Ink hands a whole terminal read to the text input: keys typed right after enter reach the
      // field that was just left, as its committed value plus the new keys. They belong here.
      if (action.alias !== undefined && action.alias !== s.editing.alias) {
        const left = s.servers[action.alias] ?? '';
        if (!draft.startsWith(left)) return s;
        draft = s.editing.draft + draft.slice(left.length);
      }
      // Pasted lines (or text and enter in one read): each line fills a field, then the next.
      const lines = draft.split(/\r\n|\r|\n/);
      let next: WizardState = { ...s, editing: { ...s.editing, draft: lines[0]! } };
      for (const line of lines.slice(1)) {
        next = reduceWizard(next, { type: 'edit-commit', move: 1, continue: true });
        if (!next.editing) break;
        next = { ...next, editing: { ...next.editing, draft: line } };
      }
      return next;
    }
    case 'edit-commit': {
      const committed = commitDraft(s);
      const last = aliasesOf(committed).length - 1;
      const target = committed.focus + action.move;
      // Enter on the last field ends editing there.
      if (action.move > 0 && committed.focus >= last) return committed;
      const moved = { ...committed, focus: clampFocus(committed, target) };
      return action.continue ? startEditing(moved) : moved;
    }
    case 'edit-cancel': {
      const { editing: _e, ...rest } = s;
      return rest;
    }
    case 'add-app': {
      const committed = commitDraft(s);
      const appCount = Math.max(committed.appCount, ...appAliases(committed.servers).map((a) => appNumber(a) ?? 0)) + 1;
      const next = { ...committed, appCount };
      return startEditing({ ...next, focus: aliasesOf(next).indexOf(`app${appCount}`) });
    }
    case 'remove-app': {
      if (s.editing || s.appCount <= 2) return s;
      const alias = `app${s.appCount}`;
      const { [alias]: _gone, ...servers } = s.servers;
      const next = { ...s, servers, appCount: s.appCount - 1 };
      return { ...next, focus: clampFocus(next, next.focus) };
    }
    case 'toggle-lb-standby': {
      // The optional second load balancer and its VIP come and go together (topology lb only).
      if (s.editing || s.topology !== 'lb') return s;
      if ('lb_standby' in s.servers || 'lb_vip' in s.servers) {
        const { lb_standby: _s, lb_vip: _v, ...servers } = s.servers;
        const next = { ...s, servers };
        return { ...next, focus: clampFocus(next, next.focus) };
      }
      const next = { ...s, servers: { ...s.servers, lb_standby: '', lb_vip: '' } };
      return startEditing({ ...next, focus: aliasesOf(next).indexOf('lb_standby') });
    }
    case 'review':
      return { ...commitDraft(s), screen: 'review', showMissing: true };
    case 'back': {
      const prev: Partial<Record<Screen, Screen>> = {
        topology: s.fromSaved ? 'pick' : 'name',
        servers: 'topology',
        review: 'servers',
      };
      const screen = prev[s.screen] ?? s.screen;
      const { editing: _e, ...rest } = s;
      return { ...rest, screen };
    }
    case 'save-refused':
      return {
        ...s,
        notice: `Not saved: ${action.errors} ${action.errors === 1 ? 'problem' : 'problems'} left; press e to fix ${action.errors === 1 ? 'it' : 'them'} (nothing is saved until the table is valid)`,
      };
    case 'saved':
      return { ...s, screen: 'saved', saved: { inventory: action.inventory, path: action.path } };
    default: {
      const never: never = action;
      return never;
    }
  }
}
