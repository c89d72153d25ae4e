/**
 * After the table is saved: check every host at once (connectivity.ts) and list, per host, the
 * OS, the login user and sudo, the clock offset, and each problem with its fix. Unknown host
 * keys are asked here (fingerprint shown). enter: go on; r: check again; esc: quit.
 */
import { useEffect, useState, useSyncExternalStore } from 'react';
import { Box, Text, useInput } from 'ink';
import Spinner from 'ink-spinner';
import type { Inventory } from '../../inventory/types.js';
import { checkConnectivity, type CheckOptions, type HostCheck } from './connectivity.js';
import type { HostKeyStore } from './host-key-store.js';
import { KeyHints, useTheme } from '../theme.js';

export interface ConnectivityScreenProps {
  inventory: Inventory;
  transport: CheckOptions['transport'];
  hostKeys?: HostKeyStore;
  now?: () => number;
  /** Fixed spinner frame (tests). */
  spinnerFrame?: string;
  /** enter after the check (problems or not) */
  onContinue(checks: HostCheck[]): void;
  onQuit(): void;
}

const noKeys = { subscribe: () => () => {}, getPending: () => undefined };

export function ConnectivityScreen(props: ConnectivityScreenProps) {
  const t = useTheme();
  const [checks, setChecks] = useState<HostCheck[]>([]);
  const [round, setRound] = useState(0);
  const [finished, setFinished] = useState(false);
  const keys = props.hostKeys ?? noKeys;
  const pendingKey = useSyncExternalStore(keys.subscribe, keys.getPending, keys.getPending);

  useEffect(() => {
    let live = true;
    setFinished(false);
    void checkConnectivity(props.inventory, {
      transport: props.transport,
      ...(props.now ? { now: props.now } : {}),
      onUpdate: (c) => live && setChecks(c),
    }).then(() => live && setFinished(true));
    return () => {
      live = false;
    };
    // Run again only when asked (r): the transports and table are fixed for this screen.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [round]);

  useInput(
    (input) => {
      if (input === 'y' || input === 'n') props.hostKeys?.answer(input === 'y');
    },
    { isActive: pendingKey !== undefined },
  );
  useInput(
    (input, key) => {
      if (key.escape) props.onQuit();
      else if (finished && key.return) props.onContinue(checks);
      else if (finished && input === 'r') setRound((r) => r + 1);
    },
    { isActive: pendingKey === undefined },
  );

  const bad = checks.filter((c) => c.status === 'problems').length;
  return (
    <Box flexDirection="column">
      <Text bold>Checking {checks.length} hosts of {props.inventory.cluster}: SSH, OS, sudo, clock, VIP interface, firewall, PostgreSQL</Text>
      {checks.map((c) => (
        <HostLine key={c.alias} check={c} spinnerFrame={props.spinnerFrame} />
      ))}
      {pendingKey && (
        <Box flexDirection="column" marginTop={1} borderStyle="round" borderColor={t.c('yellow')} paddingX={1} alignSelf="flex-start">
          <Text bold>{`${pendingKey.host}:${pendingKey.port} presents an unknown ${pendingKey.keyType} host key:`}</Text>
          <Text color={t.c('cyan')}>{`  ${pendingKey.fingerprint}`}</Text>
          {pendingKey.otherKeyTypes.length > 0 && (
            <Text color={t.c('red')}>{`  known_hosts already has a ${pendingKey.otherKeyTypes.join(', ')} key for it: check before trusting this one`}</Text>
          )}
          <Text>{`Trust it and add it to ${pendingKey.knownHostsFile}? (y/n)`}</Text>
        </Box>
      )}
      {finished && (
        <Box marginTop={1}>
          {bad === 0 ? (
            <Text color={t.c('green')} bold>{`✓ All ${checks.length} hosts are ready`}</Text>
          ) : (
            <Text color={t.c('red')} bold>{`✗ ${bad} of ${checks.length} hosts have problems: fix them and press r to check again`}</Text>
          )}
        </Box>
      )}
      <KeyHints
        keys={
          pendingKey ? [['y', 'trust'], ['n', 'refuse']] : finished ? [['enter', bad ? 'go on anyway' : 'choose runbooks'], ['r', 'check again'], ['esc', 'quit']] : [['esc', 'quit']]
        }
      />
    </Box>
  );
}

function HostLine({ check: c, spinnerFrame }: { check: HostCheck; spinnerFrame?: string }) {
  const t = useTheme();
  const mark =
    c.status === 'checking' ? <Text color={t.c('cyan')}>{spinnerFrame ?? <Spinner type="dots" />}</Text> : c.status === 'ok' ? <Text color={t.c('green')}>✓</Text> : <Text color={t.c('red')}>✗</Text>;
  const facts = [
    c.os,
    c.user === undefined ? undefined : c.sudo === 'root' ? 'root' : c.sudo === 'ok' ? `${c.user}, sudo ok` : c.sudo === 'no' ? `${c.user}, no sudo` : c.user,
    c.skewMs === undefined ? undefined : `clock ${c.skewMs >= 0 ? '+' : '-'}${(Math.abs(c.skewMs) / 1000).toFixed(1)} s`,
  ].filter(Boolean);
  // What the runbooks will meet there: the VIP's interface, the firewall tool, PostgreSQL.
  const roleFacts = [c.vip, c.firewall === undefined ? undefined : `firewall: ${c.firewall}`, c.postgres].filter(Boolean);
  return (
    <Box flexDirection="column">
      <Text>
        {mark} {c.alias} <Text dimColor={t.dim}>{c.address}</Text>
        {facts.length > 0 && <Text>{`  ${facts.join(' · ')}`}</Text>}
      </Text>
      {roleFacts.length > 0 && (
        <Box marginLeft={4}>
          <Text dimColor={t.dim}>{roleFacts.join(' · ')}</Text>
        </Box>
      )}
      {c.problems.map((p, i) => (
        <Box key={i} flexDirection="column" marginLeft={4}>
          <Text color={t.c('red')}>{p.what}</Text>
          <Text>
            <Text bold>fix: </Text>
            {p.fix}
          </Text>
        </Box>
      ))}
    </Box>
  );
}
