/**
 * A stand-in `systemctl` for scripts run by a real `sh`: it answers `show`,
 * `is-active` and `is-enabled` from a table of units the way systemd 257
 * does (what the lab's Debian 13 hosts printed), and logs each start, since
 * every start is a process on each host of a fleet.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface StandinUnit {
  LoadState?: string;
  ActiveState?: string;
  CanReload?: string;
  Accept?: string;
  FragmentPath?: string;
  DropInPaths?: string;
  /** What `systemctl is-enabled` prints for it; "not-found" unless given. */
  enabled?: string;
}

/** The order systemctl show prints these properties in (the manager's, not the order asked). */
const SHOW_ORDER = [
  'Accept',
  'LoadState',
  'ActiveState',
  'FragmentPath',
  'DropInPaths',
  'CanReload',
] as const;

/** A unit's property lines as systemd shows them: a unit it did not find is not-found and inactive. */
export function showLines(name: string, unit: StandinUnit | undefined): string[] {
  const found: StandinUnit = unit ?? { LoadState: 'not-found', ActiveState: 'inactive' };
  const defaults: Record<(typeof SHOW_ORDER)[number], string> = {
    Accept: 'no',
    LoadState: 'not-found',
    ActiveState: 'inactive',
    FragmentPath: '',
    DropInPaths: '',
    CanReload: 'no',
  };
  // Accept= is a socket's property only: a service prints nothing for it.
  return SHOW_ORDER.filter((p) => p !== 'Accept' || name.endsWith('.socket')).map(
    (p) => `${p}=${found[p] ?? defaults[p]}`,
  );
}

const IS_ACTIVE = ['active', 'reloading', 'refreshing'];
const IS_ENABLED = ['enabled', 'enabled-runtime', 'static', 'alias', 'indirect', 'generated'];

export interface StandinRun {
  stdout: string;
  status: number | null;
  /** The systemctl command lines started, in order. */
  started: string[];
}

/**
 * Runs `script` under /bin/sh with the stand-in first on PATH; `scratch`
 * lists what it left in the directory $SCRATCH names (`NAME: CONTENT`).
 */
export function runWithSystemctl(
  script: string,
  units: Record<string, StandinUnit>,
): StandinRun & { scratch: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-systemctl-'));
  const bin = path.join(dir, 'bin');
  const table = path.join(dir, 'units');
  const scratch = path.join(dir, 'scratch');
  fs.mkdirSync(bin);
  fs.mkdirSync(table);
  fs.mkdirSync(scratch);
  for (const [name, unit] of Object.entries(units)) {
    fs.writeFileSync(path.join(table, `${name}.show`), `${showLines(name, unit).join('\n')}\n`);
    if (unit.enabled !== undefined)
      fs.writeFileSync(path.join(table, `${name}.enabled`), `${unit.enabled}\n`);
  }
  const log = path.join(dir, 'started.log');
  fs.writeFileSync(
    path.join(bin, 'systemctl'),
    [
      '#!/bin/sh',
      `echo "$*" >> '${log}'`,
      `t='${table}'`,
      'verb=$1; shift; quiet=; value=; props=',
      'show() { if [ -f "$t/$1.show" ]; then cat "$t/$1.show"; else printf "LoadState=not-found\\nActiveState=inactive\\nFragmentPath=\\nDropInPaths=\\nCanReload=no\\n"; case $1 in *.socket) echo Accept=no ;; esac; fi; }',
      'set -- "$@" --end; first=yes',
      'while [ "$1" != --end ]; do',
      '  case $1 in',
      '    --quiet) quiet=yes ;;',
      '    --value) value=yes ;;',
      '    -p) props=,$2,; shift ;;',
      '    *) set -- "$@" "$1" ;;',
      '  esac; shift',
      'done; shift',
      'rc=1',
      'case $verb in',
      '  show)',
      '    for u; do',
      '      [ -n "$first" ] || echo; first=',
      '      show "$u" | while IFS= read -r l; do case $props in *,"${l%%=*}",*) if [ -n "$value" ]; then printf "%s\\n" "${l#*=}"; else printf "%s\\n" "$l"; fi ;; esac; done',
      '    done; rc=0 ;;',
      '  is-active) rc=3',
      '    for u; do s=$(show "$u" | sed -n "s/^ActiveState=//p"); [ -n "$quiet" ] || echo "$s"',
      `      case $s in ${IS_ACTIVE.join('|')}) rc=0 ;; esac; done ;;`,
      '  is-enabled)',
      '    for u; do s=not-found; [ -f "$t/$u.enabled" ] && read -r s < "$t/$u.enabled"; [ -n "$quiet" ] || echo "$s"',
      `      case $s in ${IS_ENABLED.join('|')}) rc=0 ;; esac; done ;;`,
      // systemctl-cat.c: not found, or loaded without a file on disk, fails; masked or unloadable succeeds.
      '  cat) rc=0',
      '    for u; do ls=$(show "$u" | sed -n "s/^LoadState=//p"); f=$(show "$u" | sed -n "s/^\\(FragmentPath\\|DropInPaths\\)=//p" | tr -d "\\n")',
      '      case $ls in not-found|"") rc=1 ;; loaded|bad-setting) [ -n "$f" ] || rc=1 ;; esac; done ;;',
      'esac',
      'exit $rc',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  try {
    const result = spawnSync('/bin/sh', ['-c', script], {
      encoding: 'utf8',
      env: { PATH: `${bin}:/usr/bin:/bin`, SCRATCH: scratch },
    });
    const started = fs.existsSync(log)
      ? fs
          .readFileSync(log, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
      : [];
    const files = fs
      .readdirSync(scratch)
      .map((f) => `${f}: ${fs.readFileSync(path.join(scratch, f), 'utf8')}`);
    return { stdout: result.stdout, status: result.status, started, scratch: files.join('') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
