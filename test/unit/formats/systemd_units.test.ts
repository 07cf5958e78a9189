/**
 * One `systemctl show` answers what `systemctl is-active` and `systemctl cat`
 * answered, one process each: the parser (TypeScript and the shell the
 * probes run) against systemd 257's output, and the tests against what
 * those commands would have said.
 */
import fc from 'fast-check';
import {
  catSucceeds,
  catSucceedsTest,
  isActive,
  isActiveTest,
  isEnabledTest,
  isEnabledWord,
  parseSystemctlShow,
  SHARED_UNITS,
  systemctlShowLines,
  unitVariable,
  type UnitProperty,
} from '../../../src/formats/systemd_units.js';
import { HOST_FACTS_PROBE } from '../../../src/executor/host_facts.js';
import { buildReadScript, parseReadOutput, type ReadRequest } from '../../../src/executor/remote_read.js';
import { firewallProbeScript } from '../../../src/formats/firewall_probe.js';
import { detectionScript } from '../../../src/resources/service.js';
import { runWithSystemctl, showLines, type StandinUnit } from '../../support/systemctl_standin.js';

// `systemctl show -p Id,LoadState,ActiveState,UnitFileState,CanReload,MainPID,Accept,FragmentPath,DropInPaths
// ssh.service ssh.socket sshd.service sshd.socket firewalld.service nosuch.service` on the lab's Debian 13
// host (systemd 257, sshd under ssh.service): sshd.service is Debian's alias of ssh.service.
const DEBIAN13_SHOW = `MainPID=70
Id=ssh.service
LoadState=loaded
ActiveState=active
FragmentPath=/usr/lib/systemd/system/ssh.service
DropInPaths=
UnitFileState=enabled
CanReload=yes

Accept=no
Id=ssh.socket
LoadState=loaded
ActiveState=inactive
FragmentPath=/usr/lib/systemd/system/ssh.socket
DropInPaths=
UnitFileState=disabled
CanReload=no

MainPID=70
Id=ssh.service
LoadState=loaded
ActiveState=active
FragmentPath=/usr/lib/systemd/system/ssh.service
DropInPaths=
UnitFileState=enabled
CanReload=yes

Accept=no
Id=sshd.socket
LoadState=not-found
ActiveState=inactive
FragmentPath=
DropInPaths=
UnitFileState=
CanReload=no

MainPID=0
Id=firewalld.service
LoadState=loaded
ActiveState=inactive
FragmentPath=/usr/lib/systemd/system/firewalld.service
DropInPaths=
UnitFileState=disabled
CanReload=yes

MainPID=0
Id=nosuch.service
LoadState=not-found
ActiveState=inactive
FragmentPath=
DropInPaths=
UnitFileState=
CanReload=no
`;

const ACTIVE_STATES = [
  'active',
  'reloading',
  'refreshing',
  'inactive',
  'failed',
  'activating',
  'deactivating',
  'maintenance',
  '',
];
const LOAD_STATES = ['loaded', 'not-found', 'bad-setting', 'error', 'merged', 'stub', 'masked', ''];
const ENABLED_WORDS = [
  'enabled',
  'enabled-runtime',
  'linked',
  'linked-runtime',
  'alias',
  'masked',
  'masked-runtime',
  'static',
  'disabled',
  'indirect',
  'generated',
  'transient',
  'bad',
  'not-found',
];

describe('parseSystemctlShow', () => {
  test("the lab host's answer: one entry per unit named, an alias showing its unit's properties", () => {
    const units = parseSystemctlShow(DEBIAN13_SHOW, 6);
    expect(units.map((u) => [u.LoadState, u.ActiveState, u.CanReload, u.Accept])).toEqual([
      ['loaded', 'active', 'yes', undefined],
      ['loaded', 'inactive', 'no', 'no'],
      ['loaded', 'active', 'yes', undefined],
      ['not-found', 'inactive', 'no', 'no'],
      ['loaded', 'inactive', 'yes', undefined],
      ['not-found', 'inactive', 'no', undefined],
    ]);
    expect(units[0]!.FragmentPath).toBe('/usr/lib/systemd/system/ssh.service');
    expect(units[3]!.FragmentPath).toBe('');
  });

  test('a unit that prints none of the properties asked still takes its place (Accept of a service)', () => {
    // `systemctl show -p Accept ssh.service ssh.socket sshd.service sshd.socket` on the same host.
    expect(parseSystemctlShow('\nAccept=no\n\n\nAccept=no\n', 4)).toEqual([
      {},
      { Accept: 'no' },
      {},
      { Accept: 'no' },
    ]);
  });

  test('no output (systemctl failed): no properties, so nothing is active and cat finds nothing', () => {
    const units = parseSystemctlShow('', 2);
    expect(units).toEqual([{}, {}]);
    expect(units.map((u) => [isActive(u), catSucceeds(u)])).toEqual([
      [false, false],
      [false, false],
    ]);
  });
});

describe('what is-active, is-enabled and cat would have said', () => {
  test.each(ACTIVE_STATES.map((s) => [s, ['active', 'reloading', 'refreshing'].includes(s)] as const))(
    'is-active with ActiveState=%s succeeds: %s',
    (state, expected) => {
      expect(isActive({ ActiveState: state })).toBe(expected);
    },
  );

  test.each(
    ENABLED_WORDS.map(
      (w) =>
        [w, ['enabled', 'enabled-runtime', 'static', 'alias', 'indirect', 'generated'].includes(w)] as const,
    ),
  )('is-enabled printing %s succeeds: %s', (word, expected) => {
    expect(isEnabledWord(word)).toBe(expected);
  });

  test.each([
    // Seen on the lab host: `systemctl cat` of a masked unit prints "# Unit sshd.socket is masked." and succeeds.
    [{ LoadState: 'masked', FragmentPath: '/etc/systemd/system/sshd.socket' }, true],
    [{ LoadState: 'not-found', FragmentPath: '' }, false],
    [{ LoadState: 'loaded', FragmentPath: '/usr/lib/systemd/system/ssh.service', DropInPaths: '' }, true],
    [{ LoadState: 'bad-setting', FragmentPath: '/etc/systemd/system/ssh.service' }, true],
    // A transient unit: loaded, with no file on disk ("No files found for …").
    [{ LoadState: 'loaded', FragmentPath: '', DropInPaths: '' }, false],
    [
      { LoadState: 'loaded', FragmentPath: '', DropInPaths: '/run/systemd/transient/x.service.d/50-a.conf' },
      true,
    ],
    // "# Unit … could not be loaded.", and cat succeeds.
    [{ LoadState: 'error', FragmentPath: '' }, true],
    [{}, false],
  ])('cat of %j succeeds: %s', (unit, expected) => {
    expect(catSucceeds(unit)).toBe(expected);
  });
});

/** Runs the shell parser over the stand-in and prints each variable as `i P=value`. */
function shellParse(
  names: string[],
  units: Record<string, StandinUnit>,
  properties: UnitProperty[],
): { values: Record<string, string>[]; started: string[] } {
  const script = [
    ...systemctlShowLines(names, properties),
    ...names.flatMap((_, i) => properties.map((p) => `printf '%s\\n' "${i} ${p}=$${unitVariable(i, p)}"`)),
  ].join('\n');
  const run = runWithSystemctl(script, units);
  expect(run.status).toBe(0);
  const values: Record<string, string>[] = names.map(() => ({}));
  for (const line of run.stdout.split('\n').filter((l) => l !== '')) {
    const [, index, property, value] = /^(\d+) (\w+)=(.*)$/.exec(line)!;
    values[Number(index)]![property!] = value!;
  }
  return { values, started: run.started };
}

const unitArbitrary = fc.record({
  LoadState: fc.constantFrom(...LOAD_STATES.filter((s) => s !== '')),
  ActiveState: fc.constantFrom(...ACTIVE_STATES.filter((s) => s !== '')),
  CanReload: fc.constantFrom('yes', 'no'),
  Accept: fc.constantFrom('yes', 'no'),
  FragmentPath: fc.constantFrom('', '/usr/lib/systemd/system/x', '/etc/systemd/system/a b=c'),
  DropInPaths: fc.constantFrom('', '/etc/systemd/system/x.d/a.conf /run/systemd/system/x.d/b.conf'),
});

describe('the shell parser the probes run', () => {
  test('sets what parseSystemctlShow reads, from one systemctl, for any units and properties', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(fc.constantFrom('ssh', 'sshd', 'fail2ban', 'x-y'), fc.constantFrom('service', 'socket')),
          { minLength: 1, maxLength: 5, selector: ([n, t]) => `${n}.${t}` },
        ),
        fc.array(unitArbitrary, { minLength: 5, maxLength: 5 }),
        fc.subarray(
          ['LoadState', 'ActiveState', 'CanReload', 'Accept', 'FragmentPath', 'DropInPaths'] as const,
          {
            minLength: 1,
          },
        ),
        (pairs, props, properties) => {
          const names = pairs.map(([n, t]) => `${n}.${t}`);
          const units = Object.fromEntries(names.map((name, i) => [name, props[i]!]));
          // As systemctl prints it: a blank line before each unit after the first, even one that prints nothing.
          const shown = names
            .map(
              (name, i) =>
                (i > 0 ? '\n' : '') +
                showLines(name, units[name])
                  .filter((l) => properties.includes(l.split('=')[0] as UnitProperty))
                  .map((l) => `${l}\n`)
                  .join(''),
            )
            .join('');
          const expected = parseSystemctlShow(shown, names.length).map((u) =>
            Object.fromEntries(properties.map((p) => [p, u[p] ?? ''])),
          );
          const { values, started } = shellParse(names, units, [...properties]);
          expect(values).toEqual(expected);
          expect(started).toEqual([`show -p ${properties.join(',')} ${names.join(' ')}`]);
        },
      ),
      { numRuns: 50 },
    );
  });

  test('its tests answer as is-active, cat and is-enabled would have, for every state', () => {
    const units: Record<string, StandinUnit> = {};
    const names: string[] = [];
    for (const LoadState of LOAD_STATES.filter((s) => s !== ''))
      for (const ActiveState of ACTIVE_STATES.filter((s) => s !== ''))
        for (const FragmentPath of ['', '/usr/lib/systemd/system/u']) {
          const name = `u${names.length}.service`;
          names.push(name);
          units[name] = { LoadState, ActiveState, FragmentPath, enabled: ENABLED_WORDS[names.length % 14]! };
        }
    const script = [
      ...systemctlShowLines(names, ['LoadState', 'ActiveState', 'FragmentPath', 'DropInPaths']),
      ...names.map(
        (name, i) =>
          `a=no; ${isActiveTest(i)} && a=yes; c=no; ${catSucceedsTest(i)} && c=yes; e=no; ${isEnabledTest(i, name)} && e=yes; echo "$a $c $e"`,
      ),
    ].join('\n');
    const run = runWithSystemctl(script, units);
    expect(run.stdout.trim().split('\n')).toEqual(
      names.map((name) => {
        const unit = units[name]!;
        const enabled = unit.LoadState !== 'not-found' && isEnabledWord(unit.enabled!);
        return [isActive(unit), catSucceeds(unit), enabled].map((b) => (b ? 'yes' : 'no')).join(' ');
      }),
    );
    // is-enabled is asked only of units systemd found: one not found has no unit file to be enabled by.
    const asked = names.filter((n) => units[n]!.LoadState !== 'not-found');
    expect(run.started).toEqual([
      `show -p LoadState,ActiveState,FragmentPath,DropInPaths ${names.join(' ')}`,
      ...asked.map((n) => `is-enabled --quiet ${n}`),
    ]);
  });
});

describe('a read round trip whose probes share the units', () => {
  const probes = [
    HOST_FACTS_PROBE.replace(/^PATH=.*$/m, ':'),
    detectionScript('sshd'),
    firewallProbeScript().replace('PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"', ':'),
  ].map((script) => script.replaceAll('[ -d /run/systemd/system ]', 'true'));
  const units: Record<string, StandinUnit> = {
    'ssh.service': {
      LoadState: 'loaded',
      ActiveState: 'active',
      CanReload: 'yes',
      FragmentPath: '/usr/lib/x',
    },
    'ssh.socket': { LoadState: 'loaded', ActiveState: 'inactive', enabled: 'disabled' },
  };
  const answers = (requests: ReadRequest[]): { outputs: string[]; started: string[] } => {
    const { text, marker } = buildReadScript(requests);
    const run = runWithSystemctl(text.replaceAll('[ -d /run/systemd/system ]', 'true'), units);
    const outputs = parseReadOutput(requests, run.stdout, marker).map((a) =>
      a.kind === 'probe' ? a.result.stdout : a.kind,
    );
    return { outputs, started: run.started };
  };

  test('asks systemd once for all of them, and each answers as it does alone', () => {
    const together = answers(probes.map((script) => ({ kind: 'probe', script })));
    expect(together.started.filter((s) => s.startsWith('show '))).toEqual([
      `show -p LoadState,ActiveState,CanReload,Accept,FragmentPath,DropInPaths ${SHARED_UNITS.join(' ')}`,
    ]);
    const alone = probes.map((script) => answers([{ kind: 'probe', script }]));
    // The firewall probe asks only where firewall-cmd is installed (on this machine or not).
    expect(alone.map((a) => a.started.filter((s) => s.startsWith('show ')).length).slice(0, 2)).toEqual([
      1, 1,
    ]);
    expect(together.outputs).toEqual(alone.map((a) => a.outputs[0]));
    expect(together.outputs[0]).toMatch(/^unit=service ssh$/m);
    expect(together.outputs[1]).toBe('systemd ssh reload - -\n');
  });

  test('a probe alone starts its own systemctl: no line is added for it', () => {
    const { text } = buildReadScript([{ kind: 'probe', script: probes[1]! }]);
    expect(text.split('\n').filter((l) => l.includes('systemctl show'))).toHaveLength(1);
  });
});
