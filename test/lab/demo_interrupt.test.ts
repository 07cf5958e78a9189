/**
 * `sshfix demo` interrupted: whatever it was doing, it tears its lab down
 * (network namespaces, veths, bridge, processes, state under /run/sshfix-lab;
 * on systemd hosts also the systemd-nspawn machines) before it exits. The real
 * CLI runs as a child process and gets real signals, sent once its output
 * shows the step to interrupt. On both kinds of host the demo boots.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describeLabKinds, LAB_START_TIMEOUT_MS, PLAIN, SYSTEMD_SERVICE, type LabKind } from './lab.js';

/** Jest runs from the repository root (package.json). */
const REPO = process.cwd();
const BIN = path.join(REPO, 'dist/cli/bin.js');
const LAB_ID = 'demo';

interface Demo {
  /** Resolves once `text` shows on stdout. */
  shows(text: string): Promise<void>;
  /** Resolves once `text` shows on stderr. */
  says(text: string): Promise<void>;
  signal(signal: NodeJS.Signals): void;
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function startDemo(kind: LabKind): Demo {
  const args = [BIN, 'demo', '--kind', kind.kind, ...(kind.sshdUnit ? ['--sshd-unit', kind.sshdUnit] : [])];
  const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stdout, stderr })),
  );
  const until = async (printed: () => string, text: string): Promise<void> => {
    while (!printed().includes(text)) {
      const more = new Promise<void>((resolve) => waiters.push(resolve));
      if (await Promise.race([more.then(() => false), exited.then(() => true)]))
        throw new Error(`the demo exited before printing ${JSON.stringify(text)}:\n${stdout}\n${stderr}`);
    }
  };
  return {
    shows: (text) => until(() => stdout, text),
    says: (text) => until(() => stderr, text),
    signal: (signal) => child.kill(signal),
    exited,
  };
}

/** What a lab with the demo's id leaves on the machine while it exists. */
function leftovers(): string[] {
  const netns = fs.existsSync('/run/netns')
    ? fs.readdirSync('/run/netns').filter((n) => n.startsWith(`sshfix-${LAB_ID}-h`))
    : [];
  const links = (spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '')
    .split('\n')
    .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined && new RegExp(`^${LAB_ID}-(\\d+|br)$`).test(name));
  const leases = fs.existsSync('/run/sshfix-lab')
    ? fs
        .readdirSync('/run/sshfix-lab')
        .filter((f) => f.endsWith('.lock'))
        .filter((f) => fs.readFileSync(path.join('/run/sshfix-lab', f), 'utf8').includes(`"id":"${LAB_ID}"`))
    : [];
  const state = fs.existsSync(`/run/sshfix-lab/${LAB_ID}`) ? [`/run/sshfix-lab/${LAB_ID}`] : [];
  // A systemd host is a systemd-nspawn process named after the host (-M NAME), with its own PID 1 and units.
  const machines = fs
    .readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .map((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        return [];
      }
    })
    .filter((argv) => argv[0]?.endsWith('systemd-nspawn'))
    .map((argv) => argv[argv.indexOf('-M') + 1] ?? '')
    .filter((name) => name.startsWith(`${LAB_ID}-h`));
  const propagate = '/run/systemd/nspawn/propagate';
  const machineDirs = fs.existsSync(propagate)
    ? fs.readdirSync(propagate).filter((n) => n.startsWith(`${LAB_ID}-h`))
    : [];
  return [
    ...netns,
    ...links,
    ...leases.map((f) => `lease ${f}`),
    ...state,
    ...machines.map((m) => `systemd-nspawn ${m}`),
    ...machineDirs.map((m) => `${propagate}/${m}`),
  ];
}

describeLabKinds('sshfix demo, interrupted', [PLAIN, SYSTEMD_SERVICE], (kind) => {
  // A first systemd lab on a machine builds its root (minutes) before it boots.
  const timeoutMs = kind.kind === 'systemd' ? LAB_START_TIMEOUT_MS : 300_000;

  test(
    'SIGINT during the apply step: the apply settles its hosts, the lab is torn down, nothing is left',
    async () => {
      const demo = startDemo(kind);
      await demo.shows('==> sshfix apply playbooks/fix-connection-reset.yml');
      const running = leftovers();
      expect(running).not.toEqual([]);
      if (kind.kind === 'systemd') expect(running).toContain(`systemd-nspawn ${LAB_ID}-h01`);
      demo.signal('SIGINT');
      const { code, stdout, stderr } = await demo.exited;
      expect(leftovers()).toEqual([]);
      expect(code).toBe(130);
      expect(stderr).toMatch(/sshfix demo: SIGINT: stopping after the current step/);
      expect(stdout).toMatch(/\nRECAP \(interrupted by SIGINT\)\n/);
      expect(stdout).toContain('==> Tearing the lab down');
      expect(stdout).not.toMatch(/to every host, again/);
    },
    timeoutMs,
  );

  test(
    'SIGINT twice while the lab is being built: it is torn down once built, and nothing is left',
    async () => {
      const demo = startDemo(kind);
      await demo.shows('==> Starting a lab of');
      demo.signal('SIGINT');
      // Signals are not queued: the second must come after the first was handled to count as one.
      await demo.says('sshfix demo: SIGINT: stopping');
      demo.signal('SIGINT');
      const { code, stdout, stderr } = await demo.exited;
      expect(leftovers()).toEqual([]);
      expect(code).toBe(130);
      expect(stderr).toMatch(/sshfix demo: SIGINT again: tearing the lab down now/);
      expect(stdout).toContain('==> Tearing the lab down');
    },
    timeoutMs,
  );
});
