#!/usr/bin/env node
// @ts-check
/**
 * `npm run bench [-- --hosts N] [--skip-ansible] [--repeat R] [--trace] [--load]`
 *
 * Measures sshfix against the floor (a bare ssh2 connect + `true` per host)
 * and against tuned Ansible on a lab of N real sshd hosts (see
 * /work/shared/LAB.md, src/lab/lab.ts), every run timed as a whole process.
 * Every tool starts from the same broken fleet (fresh lab, broken by the
 * same script) and must leave the same end state, read per layer; a
 * benchmark where tools do different work is void. See bench/README.md.
 *
 * Needs `npm run build` first (it runs dist/), root, and the lab's tools.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hasGnuTime, measure } from './lib/measure.mjs';
import {
  acceptedLogins,
  breakHosts,
  comparableState,
  hostCpuSeconds,
  roomInNeighbourTable,
  fleetState,
  loginsPerHost,
  workstationFailures,
} from './lib/fleet.mjs';
import { median, renderTraceSummary, summariseTrace } from './lib/trace_summary.mjs';
import { disarmCommand, guardedChangeCommand, readCommand } from './lib/bounds.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The lab's id unless --lab-id gives another (two benches on one machine need two). */
const DEFAULT_LAB_ID = 'bench';
/** Hosts that get a real connection from the admin workstation's address after each tool. */
const WORKSTATION_SAMPLE = 5;
/**
 * The least a first run that must not lock anyone out can do on a host, with
 * nothing read, written or planned: validate sshd's configuration, reload it
 * the way the lab's init system does (what sshfix's handler runs there), and
 * prove with a new connection that a login still works. Its ratio to the
 * floor bounds the first-run ratio from below.
 */
const CONFIRMED_RELOAD_RUN = 'floor + confirmed reload';
const FLOOR_RUN = 'floor (connect + true)';
/**
 * The no-op's measured lower bound: one connection whose one command reads
 * what the shipped playbook converges (its files and the firewall's
 * ruleset, sent to the controller), with nothing planned (bench/lib/bounds.mjs).
 */
const READ_RUN = 'floor + read';
/**
 * The first run's measured lower bound for a confirm-or-revert design: the
 * read, a backup, a dead-man timer, every managed file rewritten with its own
 * bytes, a firewall rule added and deleted, `sshd -t` and the reload, a new
 * connection, and the timer cancelled over the first: the fleet's state is
 * left as it was (bench/lib/bounds.mjs).
 */
const GUARDED_CHANGE_RUN = 'floor + guarded change';
/** The confirmed reload's command per lab kind: the reload sshfix's handler uses there. */
const CONFIRMED_RELOAD_COMMAND = {
  plain: '/usr/sbin/sshd -t && service ssh reload',
  systemd: '/usr/sbin/sshd -t && systemctl reload ssh.service',
};

/** The targets (issues #6 and #15), checked at any N but stated for 100 and 1,000 hosts. */
const TARGETS = {
  noopOverFloor: 1.3,
  firstOverConfirmedReload: 1.3,
  ansibleOverSshfix: 20,
  noopOverFloorAt1000: 2,
  peakRssMbAt1000: 150,
};

/**
 * @typedef {import('./lib/measure.mjs').Measurement} Measurement
 * @typedef {{ rollbacks: number, retries: number | null, unreachable: number }} SshfixCounts
 * @typedef {Measurement & { run: string, loginsPerHost: { mean: number, min: number, max: number },
 *   hostCpuS: number, repeats: number, wallRunsS: number[], outcome: string, counts?: SshfixCounts,
 *   trace?: ReturnType<typeof summariseTrace> }} RunResult
 */

/** Suffix of the names of runs made with the CPUs kept busy (--load). */
const UNDER_LOAD = ' under load';

function usage() {
  return [
    'usage: npm run bench -- [--hosts N] [--forks F] [--skip-ansible] [--repeat R] [--trace] [--load] [--tools floor,sshfix,ansible]',
    '  --hosts N       lab hosts (default 100)',
    '  --forks F       concurrency of every tool (default: N, as the issue asks)',
    '  --repeat R      runs of the floor runs, the sshfix no-op and plan; the median is reported (default 3)',
    '  --skip-ansible  do not run Ansible even when ansible-playbook is installed',
    '  --trace         run sshfix through bench/sshfix_traced.mjs and show where its time goes',
    '  --tools LIST    subset of floor,sshfix,ansible (floor and sshfix share a lab)',
    '  --load          also run the floor and sshfix again, on a fresh lab, with `stress-ng --cpu <CPUs>`',
    '                  keeping every CPU busy (needs stress-ng: apt-get install -y stress-ng)',
    '  --kind KIND     lab hosts of kind plain (Debian 12, sysvinit; default) or systemd (Debian 13,',
    '                  systemd as PID 1, OpenSSH 10: sshd-session and sshd-auth per connection)',
    "  --lab-id ID     the lab's id (default bench): two benches on one machine need two",
    '  --playbook FILE the sshfix playbook (default playbooks/fix-connection-reset.yml; the end-state',
    '                  comparison with bench/ansible/ assumes that one)',
  ].join('\n');
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      hosts: { type: 'string', default: '100' },
      forks: { type: 'string' },
      repeat: { type: 'string', default: '3' },
      'skip-ansible': { type: 'boolean', default: false },
      trace: { type: 'boolean', default: false },
      load: { type: 'boolean', default: false },
      kind: { type: 'string', default: 'plain' },
      'lab-id': { type: 'string', default: DEFAULT_LAB_ID },
      tools: { type: 'string', default: 'floor,sshfix,ansible' },
      playbook: { type: 'string', default: path.join(ROOT, 'playbooks', 'fix-connection-reset.yml') },
      help: { type: 'boolean', default: false },
    },
  });
  const hosts = Number(values.hosts);
  const repeat = Number(values.repeat);
  const forks = values.forks === undefined ? hosts : Number(values.forks);
  for (const [name, value] of [
    ['hosts', hosts],
    ['repeat', repeat],
    ['forks', forks],
  ]) {
    if (!Number.isInteger(value) || Number(value) < 1)
      throw new Error(`--${name} must be a positive integer\n${usage()}`);
  }
  const tools = new Set(values.tools.split(',').map((t) => t.trim()));
  for (const tool of tools)
    if (!['floor', 'sshfix', 'ansible'].includes(tool)) throw new Error(`unknown tool ${tool}\n${usage()}`);
  if (values['skip-ansible']) tools.delete('ansible');
  const kind = values.kind;
  if (kind !== 'plain' && kind !== 'systemd') throw new Error(`--kind must be plain or systemd\n${usage()}`);
  return {
    help: values.help,
    hosts,
    forks,
    repeat,
    trace: values.trace,
    load: values.load,
    kind: /** @type {'plain' | 'systemd'} */ (kind),
    labId: values['lab-id'],
    tools,
    playbook: path.resolve(values.playbook),
  };
}

/** @param {string} command */
function commandVersion(command, args = ['--version']) {
  const found = spawnSync(command, args, { encoding: 'utf8' });
  return found.status === 0 ? (found.stdout.split('\n')[0] ?? '').trim() : null;
}

function gitCommit() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !==
      '';
    return dirty ? `${commit} (src/ modified)` : commit;
  } catch {
    return null;
  }
}

/** Environment of the tools: no ssh-agent (keys come from the inventory), no user ssh config surprises. */
function toolEnv(/** @type {NodeJS.ProcessEnv} */ extra = {}) {
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, ...extra };
  delete env.SSH_AUTH_SOCK;
  delete env.NODE_OPTIONS;
  return env;
}

/**
 * @param {import('../src/lab/lab.js').Lab} lab
 * @param {string} file
 */
async function writeSshfixInventory(lab, file) {
  const { labInventory } = await import('../dist/lab/lab.js');
  fs.writeFileSync(file, labInventory(lab));
}

/**
 * @param {import('../src/lab/lab.js').Lab} lab
 * @param {string} file
 */
function writeAnsibleInventory(lab, file) {
  const ws = lab.workstationAddress;
  const sshArgs = `-o UserKnownHostsFile=${lab.knownHostsFile} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes`;
  fs.writeFileSync(
    file,
    [
      'all:',
      '  vars:',
      '    ansible_user: root',
      `    ansible_ssh_private_key_file: ${lab.privateKeyFile}`,
      `    ansible_ssh_common_args: "${sshArgs}"`,
      `    admin_address: ${ws}`,
      `    admin_network: ${ws}/32`,
      `    admin_hosts_access: ${ws}/255.255.255.255`,
      '  hosts:',
      ...lab.hosts.map((h) => `    ${h.name}: { ansible_host: ${h.address} }`),
      '',
    ].join('\n'),
  );
}

/**
 * What a tool's output says about the run: sshfix's JSON report, Ansible's recap, the floor's JSON line.
 * @param {string} tool
 * @param {string} stdout
 */
function outcomeOf(tool, stdout) {
  if (tool === 'floor') {
    const line = stdout.trim().split('\n').pop() ?? '';
    try {
      const report = /** @type {{ ok: number, failed: string[] }} */ (JSON.parse(line));
      return `ok=${report.ok} failed=${report.failed.length}${report.failed[0] ? ` (${report.failed[0]})` : ''}`;
    } catch {
      return 'no report';
    }
  }
  if (tool === 'ansible') {
    const totals = { ok: 0, changed: 0, unreachable: 0, failed: 0 };
    for (const m of stdout.matchAll(/ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/g)) {
      totals.ok += Number(m[1]);
      totals.changed += Number(m[2]);
      totals.unreachable += Number(m[3]);
      totals.failed += Number(m[4]);
    }
    return `tasks ok=${totals.ok} changed=${totals.changed} unreachable=${totals.unreachable} failed=${totals.failed}`;
  }
  const report = sshfixReport(stdout);
  if (report === null) return `no JSON report: ${stdout.slice(0, 200)}`;
  const hosts = Object.entries(report.hosts);
  const changedHosts = hosts.filter(([, h]) => (h.changed ?? 0) > 0).length;
  const failedHosts = hosts.filter(([, h]) => (h.failed ?? 0) > 0 || h.unreachable === true);
  const [firstName, firstFailed] = failedHosts[0] ?? [];
  const firstError = firstFailed?.error ?? firstFailed?.tasks?.find((t) => t.error)?.error;
  return `hosts changed=${changedHosts} failed=${failedHosts.length}${firstError ? ` (${firstName}: ${firstError.split('\n')[0]})` : ''}`;
}

/**
 * @typedef {{ hosts: Record<string, { changed?: number, failed?: number, unreachable?: boolean,
 *   error?: string, retries?: number, tasks?: { task: string, error?: string }[] }> }} SshfixReport
 */

/**
 * sshfix's `--format json` document, or null.
 * @param {string} stdout
 * @returns {SshfixReport | null}
 */
function sshfixReport(stdout) {
  try {
    const report = /** @type {SshfixReport} */ (JSON.parse(stdout));
    return typeof report.hosts === 'object' && report.hosts !== null ? report : null;
  } catch {
    return null;
  }
}

/**
 * What went wrong on the way, from sshfix's JSON: hosts rolled back (a task
 * whose error says so), hosts unreachable, and the connection attempts it
 * retried (each host's `retries`; null when this sshfix does not report them).
 * @param {string} stdout
 * @returns {SshfixCounts | undefined}
 */
function sshfixCounts(stdout) {
  const report = sshfixReport(stdout);
  if (report === null) return undefined;
  const hosts = Object.values(report.hosts);
  const reported = hosts.filter((h) => typeof h.retries === 'number');
  return {
    rollbacks: hosts.filter((h) => (h.tasks ?? []).some((t) => /rolled back/.test(t.error ?? ''))).length,
    retries:
      reported.length === 0 && hosts.length > 0 ? null : reported.reduce((n, h) => n + (h.retries ?? 0), 0),
    unreachable: hosts.filter((h) => h.unreachable === true).length,
  };
}

/**
 * @param {object} context
 * @param {import('../src/lab/lab.js').Lab} context.lab
 * @param {string} context.logDir
 * @param {string} run  name in the report
 * @param {string} tool  floor | sshfix | ansible
 * @param {string} command
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv, repeats?: number, sampleTree?: boolean, traceFile?: (i: number) => string }} [options]
 * @returns {Promise<RunResult>}
 */
async function timedRun(context, run, tool, command, args, options = {}) {
  const repeats = options.repeats ?? 1;
  /** @type {RunResult[]} */
  const attempts = [];
  for (let i = 0; i < repeats; i++) {
    const before = await acceptedLogins(context.lab);
    const hostCpuBefore = hostCpuSeconds(context.lab);
    const traceFile = options.traceFile?.(i);
    const env = traceFile === undefined ? options.env : { ...options.env, SSHFIX_BENCH_TRACE: traceFile };
    const measured = await measure({
      command,
      args,
      env: env ?? toolEnv(),
      cwd: ROOT,
      outputPrefix: path.join(context.logDir, `${run.replace(/\W+/g, '-')}-${i + 1}`),
      ...(options.sampleTree ? { sampleTreeEveryMs: 250 } : {}),
    });
    // Lets the hosts' per-connection sshd processes end and be reaped, so that their CPU is counted.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const logins = loginsPerHost(before, await acceptedLogins(context.lab));
    const hostCpuS = hostCpuSeconds(context.lab).reduce((sum, s, i) => sum + s - (hostCpuBefore[i] ?? 0), 0);
    const stdout = fs.readFileSync(measured.stdoutFile, 'utf8');
    const outcome = outcomeOf(tool, stdout);
    const counts = tool === 'sshfix' ? sshfixCounts(stdout) : undefined;
    /** @type {RunResult} */
    const result = {
      ...measured,
      run,
      loginsPerHost: logins,
      hostCpuS,
      repeats,
      wallRunsS: [],
      outcome,
      ...(counts ? { counts } : {}),
    };
    if (traceFile !== undefined && fs.existsSync(traceFile)) {
      result.trace = summariseTrace(JSON.parse(fs.readFileSync(traceFile, 'utf8')));
    }
    attempts.push(result);
    process.stdout.write(
      `  ${run}${repeats > 1 ? ` #${i + 1}` : ''}: ${measured.wallS.toFixed(2)} s wall, exit ${measured.exitCode}, ${outcome}\n`,
    );
  }
  const wallRunsS = attempts.map((a) => a.wallS);
  const medianWall = median(wallRunsS);
  const chosen =
    attempts.find((a) => a.wallS === medianWall) ?? attempts[Math.floor(attempts.length / 2)] ?? attempts[0];
  if (chosen === undefined) throw new Error(`${run}: no attempt`);
  return { ...chosen, wallS: medianWall ?? chosen.wallS, wallRunsS };
}

/**
 * @param {ReturnType<typeof parseOptions>} options
 */
async function startBrokenLab(options) {
  const { startLab } = await import('../dist/lab/lab.js');
  const { hosts } = options;
  const started = Date.now();
  const lab = await startLab({ id: options.labId, hosts, kind: options.kind });
  await breakHosts(lab);
  process.stdout.write(
    `  lab of ${hosts} ${options.kind} hosts up and broken in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return lab;
}

/**
 * The end state after a tool, the admin network's real connections, and the tear-down.
 * @param {import('../src/lab/lab.js').Lab} lab
 */
async function endState(lab) {
  const adminNetwork = `${lab.workstationAddress}/32`;
  const variants = await fleetState(lab, adminNetwork);
  const workstation = await workstationFailures(lab, WORKSTATION_SAMPLE);
  return {
    variants,
    workstationSample: Math.min(WORKSTATION_SAMPLE, lab.hosts.length),
    workstationFailures: workstation,
  };
}

/**
 * @param {Awaited<ReturnType<typeof endState>>} state
 */
function describeState(state) {
  const lines = state.variants.map(
    (v) =>
      `    ${v.hosts} host(s), e.g. ${v.example}: ${JSON.stringify(comparableState(v.state))} ignoreip=${JSON.stringify(v.state.fail2banIgnoreip)}`,
  );
  lines.push(
    state.workstationFailures.length === 0
      ? `    new SSH connection from the admin workstation: ok on ${state.workstationSample} sampled host(s)`
      : `    new SSH connection from the admin workstation FAILED: ${state.workstationFailures.join('; ')}`,
  );
  return `${lines.join('\n')}\n`;
}

/**
 * @param {RunResult | undefined} a
 * @param {RunResult | undefined} b
 */
function ratio(a, b) {
  return a === undefined || b === undefined || b.wallS === 0 ? null : a.wallS / b.wallS;
}

/** @param {number | null | undefined} v @param {number} digits */
const fmt = (v, digits = 2) => (v === null || v === undefined ? '-' : v.toFixed(digits));

/**
 * @param {RunResult[]} runs
 * @param {RunResult | undefined} floor
 * @param {number} hostCount
 */
function renderTable(runs, floor, hostCount) {
  const floorUnderLoad = runs.find((r) => r.run === `${FLOOR_RUN}${UNDER_LOAD}`);
  const reloadOf = (/** @type {RunResult} */ r) =>
    runs.find((c) => c.run === `${CONFIRMED_RELOAD_RUN}${r.run.endsWith(UNDER_LOAD) ? UNDER_LOAD : ''}`);
  /** Runs that change the fleet, compared with the confirmed reload. */
  const changes = (/** @type {RunResult} */ r) =>
    r.run.startsWith('sshfix apply (first run)') || r.run.startsWith(GUARDED_CHANGE_RUN);
  const header = [
    'run',
    'wall s',
    'x floor',
    'x confirmed reload',
    'CPU s',
    'host CPU s',
    'host CPU ms/host',
    'peak RSS MB',
    'tree RSS MB',
    'logins/host',
    'rollbacks',
    'retries',
    'outcome',
  ];
  const rows = runs.map((r) => [
    r.run,
    `${fmt(r.wallS)}${r.repeats > 1 ? ` (${r.wallRunsS.map((w) => w.toFixed(2)).join('/')})` : ''}`,
    fmt(ratio(r, r.run.endsWith(UNDER_LOAD) ? floorUnderLoad : floor)),
    changes(r) ? fmt(ratio(r, reloadOf(r))) : '-',
    r.cpuUserS === null || r.cpuSystemS === null ? '-' : fmt(r.cpuUserS + r.cpuSystemS),
    fmt(r.hostCpuS),
    fmt((r.hostCpuS * 1000) / Math.max(1, hostCount), 0),
    fmt(r.peakRssMb, 0),
    fmt(r.peakTreeRssMb, 0),
    r.loginsPerHost.min === r.loginsPerHost.max
      ? String(r.loginsPerHost.min)
      : `${fmt(r.loginsPerHost.mean)} (${r.loginsPerHost.min}-${r.loginsPerHost.max})`,
    r.counts ? String(r.counts.rollbacks) : '-',
    r.counts?.retries === null || r.counts === undefined ? '-' : String(r.counts.retries),
    r.outcome,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (/** @type {string[]} */ cells) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/**
 * The floor and sshfix on a fresh broken lab; run names end in `label`.
 * @param {ReturnType<typeof parseOptions>} options
 * @param {{ logDir: string, runs: RunResult[], states: Record<string, Awaited<ReturnType<typeof endState>>>, label: string }} where
 */
async function floorAndSshfix(options, where) {
  const { logDir, runs, states, label } = where;
  const forks = String(options.forks);
  const playbook = options.playbook;
  const lab = await startBrokenLab(options);
  // Started once the lab is up: bringing hosts up is not what is measured.
  const stopLoad = label === UNDER_LOAD ? await startLoad(os.cpus().length) : () => undefined;
  try {
    const context = { lab, logDir };
    const inventory = path.join(logDir, `inventory-sshfix${label.replace(/\W+/g, '-')}.yml`);
    await writeSshfixInventory(lab, inventory);
    if (options.tools.has('floor')) {
      const floorArgs = [
        path.join(ROOT, 'bench', 'floor.mjs'),
        '--known-hosts',
        lab.knownHostsFile,
        '--key',
        lab.privateKeyFile,
        '--forks',
        forks,
      ];
      const reload = CONFIRMED_RELOAD_COMMAND[options.kind];
      /** @type {[string, string[]][]} each floor run: its name, and what it adds to the bare connect */
      const floorRuns = [
        [FLOOR_RUN, []],
        [CONFIRMED_RELOAD_RUN, ['--command', reload, '--confirm']],
        [READ_RUN, ['--command', readCommand()]],
        [
          GUARDED_CHANGE_RUN,
          ['--command', guardedChangeCommand({ reload }), '--confirm', '--after-confirm', disarmCommand()],
        ],
      ];
      for (const [name, extra] of floorRuns) {
        runs.push(
          await timedRun(context, `${name}${label}`, 'floor', process.execPath, [...floorArgs, ...extra], {
            repeats: options.repeat,
          }),
        );
      }
    }
    if (options.tools.has('sshfix')) {
      // Run as the installed `sshfix` command is: the file as a program, whose
      // first lines start node with the flags it needs (scripts/bundle-cli.mjs).
      // The traced run goes through a wrapper that node starts without them.
      const program = options.trace ? process.execPath : path.join(ROOT, 'dist', 'cli', 'bin.js');
      const common = ['-i', inventory, '--known-hosts', lab.knownHostsFile, '--forks', forks];
      const sshfix = (/** @type {string} */ command) => [
        ...(options.trace ? [path.join(ROOT, 'bench', 'sshfix_traced.mjs')] : []),
        command,
        playbook,
        ...common,
        '--format',
        'json',
      ];
      const traceFile = (/** @type {string} */ name) =>
        options.trace
          ? {
              traceFile: (/** @type {number} */ i) =>
                path.join(logDir, `${name}${label.replace(/\W+/g, '-')}-${i + 1}.trace.json`),
            }
          : {};
      runs.push(
        await timedRun(
          context,
          `sshfix apply (first run)${label}`,
          'sshfix',
          program,
          sshfix('apply'),
          traceFile('first'),
        ),
      );
      runs.push(
        await timedRun(context, `sshfix apply (no-op)${label}`, 'sshfix', program, sshfix('apply'), {
          repeats: options.repeat,
          ...traceFile('noop'),
        }),
      );
      runs.push(
        await timedRun(context, `sshfix plan${label}`, 'sshfix', program, sshfix('plan'), {
          repeats: options.repeat,
          ...traceFile('plan'),
        }),
      );
      const state = await endState(lab);
      states[`sshfix${label}`] = state;
      process.stdout.write(`  end state after sshfix${label}:\n${describeState(state)}`);
    }
  } finally {
    stopLoad();
    await lab.destroy();
  }
}

/**
 * Keeps `workers` CPUs busy with stress-ng until the returned function is
 * called (or this process exits): the controller and the lab's hosts then
 * compete with it for every CPU, as on a shared CI runner.
 * @param {number} workers
 */
async function startLoad(workers) {
  const found = spawnSync('stress-ng', ['--version'], { stdio: 'ignore' });
  if (found.status !== 0) throw new Error('--load needs stress-ng (apt-get install -y stress-ng)');
  // Its own process group: one signal stops stress-ng and its workers.
  const hog = spawn('stress-ng', ['--cpu', String(workers), '--timeout', '3600s', '--quiet'], {
    stdio: 'ignore',
    detached: true,
  });
  hog.on('error', () => undefined);
  const stop = () => {
    process.off('exit', stop);
    if (hog.pid === undefined || hog.exitCode !== null || hog.signalCode !== null) return;
    try {
      process.kill(-hog.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  process.on('exit', stop);
  // Lets the workers take the CPUs before the first measured run starts.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  return stop;
}

async function main() {
  const options = parseOptions();
  if (options.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  for (const file of ['dist/lab/lab.js', 'dist/cli/bin.js']) {
    if (!fs.existsSync(path.join(ROOT, file))) throw new Error(`${file} is missing: run npm run build first`);
  }
  const { labAvailability } = await import('../dist/lab/lab.js');
  const availability = labAvailability();
  if (!availability.ok) throw new Error(`the lab cannot run here: ${availability.reason}`);
  const ansibleVersion = commandVersion('ansible-playbook');
  if (options.tools.has('ansible') && ansibleVersion === null) {
    process.stdout.write(
      'ansible-playbook is not installed: skipping Ansible (apt-get install -y ansible)\n',
    );
    options.tools.delete('ansible');
  }
  if (!hasGnuTime())
    process.stdout.write('/usr/bin/time is missing (apt-get install -y time): no CPU or peak RSS figures\n');

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(ROOT, 'bench', 'results');
  const logDir = path.join(resultsDir, `${stamp}-logs`);
  fs.mkdirSync(logDir, { recursive: true });
  const restoreNeighbourTable = roomInNeighbourTable(options.hosts);
  process.on('exit', restoreNeighbourTable);
  const loadBefore = os.loadavg();
  const forks = String(options.forks);
  /** @type {RunResult[]} */
  const runs = [];
  /** @type {Record<string, Awaited<ReturnType<typeof endState>>>} */
  const states = {};
  const byName = (/** @type {string} */ name) => runs.find((r) => r.run === name);

  process.stdout.write(
    `sshfix bench: ${options.hosts} ${options.kind} hosts, forks ${forks}, ${os.cpus().length} CPUs, node ${process.version}, logs in ${path.relative(ROOT, logDir)}\n`,
  );
  if ((loadBefore[0] ?? 0) > os.cpus().length) {
    // Wall times then include waiting for a CPU: ratios suffer less than absolute figures, but both do.
    process.stdout.write(
      `warning: load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')} exceeds the ${os.cpus().length} CPUs: figures will be inflated\n`,
    );
  }

  if (options.tools.has('floor') || options.tools.has('sshfix')) {
    process.stdout.write('\n[floor and sshfix]\n');
    await floorAndSshfix(options, { logDir, runs, states, label: '' });
    if (options.load) {
      process.stdout.write(`\n[floor and sshfix${UNDER_LOAD}: stress-ng --cpu ${os.cpus().length}]\n`);
      await floorAndSshfix(options, { logDir, runs, states, label: UNDER_LOAD });
    }
  }

  if (options.tools.has('ansible')) {
    process.stdout.write('\n[ansible]\n');
    const lab = await startBrokenLab(options);
    try {
      const context = { lab, logDir };
      const inventory = path.join(logDir, 'inventory-ansible.yml');
      writeAnsibleInventory(lab, inventory);
      const controlDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-ansible-cp-'));
      const env = toolEnv({
        ANSIBLE_CONFIG: path.join(ROOT, 'bench', 'ansible', 'ansible.cfg'),
        ANSIBLE_SSH_CONTROL_PATH_DIR: controlDir,
        ANSIBLE_NOCOLOR: '1',
      });
      const args = [
        '-i',
        inventory,
        '-f',
        forks,
        path.join(ROOT, 'bench', 'ansible', 'fix-connection-reset.yml'),
      ];
      runs.push(
        await timedRun(context, 'ansible (first run)', 'ansible', 'ansible-playbook', args, {
          env,
          sampleTree: true,
        }),
      );
      runs.push(
        await timedRun(context, 'ansible (no-op)', 'ansible', 'ansible-playbook', args, {
          env,
          sampleTree: true,
        }),
      );
      states.ansible = await endState(lab);
      process.stdout.write(`  end state after ansible:\n${describeState(states.ansible)}`);
      fs.rmSync(controlDir, { recursive: true, force: true });
    } finally {
      // Ansible's ControlPersist masters end when their hosts go away with the lab.
      await lab.destroy();
    }
  }

  // Every tool must have converged every host to one state, the same for all tools.
  /** @type {string[]} */
  const problems = [];
  for (const [tool, state] of Object.entries(states)) {
    if (state.variants.length !== 1)
      problems.push(`${tool} left ${state.variants.length} different end states`);
    if (state.workstationFailures.length > 0)
      problems.push(`${tool}: the admin workstation still cannot connect`);
  }
  const distinct = new Set(
    Object.values(states).map((s) => JSON.stringify(s.variants.map((v) => comparableState(v.state)))),
  );
  if (distinct.size > 1)
    problems.push(`the tools left different end states: ${Object.keys(states).join(' vs ')}`);
  for (const r of runs) if (r.exitCode !== 0) problems.push(`${r.run} exited ${r.exitCode}`);

  const floor = byName(FLOOR_RUN);
  const sshfixFirst = byName('sshfix apply (first run)');
  const sshfixNoop = byName('sshfix apply (no-op)');
  /** The ratios of one section: runs named with `label` (quiet: '', or UNDER_LOAD). */
  const sectionRatios = (/** @type {string} */ label) => {
    const inSection = (/** @type {string} */ name) => byName(`${name}${label}`);
    const floorRun = inSection(FLOOR_RUN);
    const reload = inSection(CONFIRMED_RELOAD_RUN);
    const read = inSection(READ_RUN);
    const guarded = inSection(GUARDED_CHANGE_RUN);
    const first = inSection('sshfix apply (first run)');
    const noop = inSection('sshfix apply (no-op)');
    return {
      sshfixFirstOverFloor: ratio(first, floorRun),
      sshfixNoopOverFloor: ratio(noop, floorRun),
      sshfixPlanOverFloor: ratio(inSection('sshfix plan'), floorRun),
      confirmedReloadOverFloor: ratio(reload, floorRun),
      sshfixFirstOverConfirmedReload: ratio(first, reload),
      // The measured lower bounds, and how far sshfix is above them.
      readOverFloor: ratio(read, floorRun),
      guardedChangeOverFloor: ratio(guarded, floorRun),
      guardedChangeOverConfirmedReload: ratio(guarded, reload),
      sshfixNoopOverRead: ratio(noop, read),
      sshfixFirstOverGuardedChange: ratio(first, guarded),
    };
  };
  const underLoad = sectionRatios(UNDER_LOAD);
  const ratios = {
    ...sectionRatios(''),
    ansibleFirstOverSshfix: ratio(byName('ansible (first run)'), sshfixFirst),
    ansibleNoopOverSshfix: ratio(byName('ansible (no-op)'), sshfixNoop),
    ...(options.load
      ? Object.fromEntries(Object.entries(underLoad).map(([name, value]) => [`${name}UnderLoad`, value]))
      : {}),
  };
  const target = (
    /** @type {number | null} */ value,
    /** @type {number} */ bound,
    /** @type {'<=' | '>='} */ op,
  ) =>
    value === null ? 'not measured' : (op === '<=' ? value <= bound : value >= bound) ? 'holds' : 'MISSED';
  /** A target stated for a fleet size is judged only on a run of that size. */
  const at = (/** @type {number} */ hosts, /** @type {string} */ verdict) =>
    options.hosts === hosts ? verdict : `not judged (stated for ${hosts} hosts)`;
  const targets = {
    [`no-op <= ${TARGETS.noopOverFloor}x floor (100 hosts)`]: at(
      100,
      target(ratios.sshfixNoopOverFloor, TARGETS.noopOverFloor, '<='),
    ),
    [`first run <= ${TARGETS.firstOverConfirmedReload}x floor + confirmed reload (100 hosts)`]: at(
      100,
      target(ratios.sshfixFirstOverConfirmedReload, TARGETS.firstOverConfirmedReload, '<='),
    ),
    [`ansible first >= ${TARGETS.ansibleOverSshfix}x sshfix`]: at(
      100,
      target(ratios.ansibleFirstOverSshfix, TARGETS.ansibleOverSshfix, '>='),
    ),
    [`ansible no-op >= ${TARGETS.ansibleOverSshfix}x sshfix`]: at(
      100,
      target(ratios.ansibleNoopOverSshfix, TARGETS.ansibleOverSshfix, '>='),
    ),
    [`no-op <= ${TARGETS.noopOverFloorAt1000}x floor (1,000 hosts)`]: at(
      1000,
      target(ratios.sshfixNoopOverFloor, TARGETS.noopOverFloorAt1000, '<='),
    ),
    [`no-op peak RSS <= ${TARGETS.peakRssMbAt1000} MB (1,000 hosts)`]: at(
      1000,
      target(sshfixNoop?.peakRssMb ?? null, TARGETS.peakRssMbAt1000, '<='),
    ),
  };

  process.stdout.write(`\n${renderTable(runs, floor, options.hosts)}\n\n`);
  for (const [name, value] of Object.entries(ratios)) process.stdout.write(`${name}: ${fmt(value)}\n`);
  process.stdout.write(`targets (${options.hosts} hosts measured):\n`);
  for (const [name, verdict] of Object.entries(targets)) process.stdout.write(`  ${name}: ${verdict}\n`);
  for (const r of runs) {
    if (r.trace)
      process.stdout.write(`\nwhere the time goes: ${r.run}\n${renderTraceSummary(r.trace, r.wallS)}`);
  }
  process.stdout.write(
    problems.length === 0
      ? '\nend states: every tool converged every host to the same state\n'
      : `\nVOID: ${problems.join('; ')}\n`,
  );

  const report = {
    date: new Date().toISOString(),
    loadAverage: { before: loadBefore, after: os.loadavg() },
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? null,
      memoryMb: Math.round(os.totalmem() / 2 ** 20),
      kernel: os.release(),
    },
    versions: {
      node: process.version,
      sshfix: gitCommit(),
      ansible: ansibleVersion,
      openssh: commandVersion('ssh', ['-V']) ?? spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim(),
    },
    options: {
      hosts: options.hosts,
      forks: options.forks,
      repeat: options.repeat,
      trace: options.trace,
      load: options.load,
      kind: options.kind,
      tools: [...options.tools],
      playbook: path.relative(ROOT, options.playbook),
    },
    runs,
    ratios,
    targets,
    endStates: states,
    valid: problems.length === 0,
    problems,
  };
  const resultFile = path.join(resultsDir, `${stamp}.json`);
  fs.writeFileSync(resultFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`results: ${path.relative(ROOT, resultFile)}\n`);
  return problems.length === 0 ? 0 : 1;
}

main().then(
  (code) => (process.exitCode = code),
  (error) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
