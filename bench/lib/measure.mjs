// @ts-check
/**
 * Runs a command as a whole process and measures it: wall time (from spawn to
 * exit, on this process's monotonic clock), CPU user + system and peak RSS.
 *
 * CPU and the largest single process's peak RSS come from GNU time
 * (`/usr/bin/time`, Debian package `time`), which reads them from wait4():
 * they include every descendant the command waited for. A tool that forks
 * workers (Ansible) uses memory in many processes at once, so the sum of the
 * resident sizes of the whole process tree is also sampled from /proc.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

export const GNU_TIME = '/usr/bin/time';
const TIME_MARK = '@@bench-time';

/**
 * @typedef {object} Measurement
 * @property {number} wallS
 * @property {number | null} cpuUserS
 * @property {number | null} cpuSystemS
 * @property {number | null} peakRssMb  largest single process (GNU time's %M)
 * @property {number | null} peakTreeRssMb  largest sum over the process tree, sampled
 * @property {number} exitCode
 * @property {string} stdoutFile
 * @property {string} stderrFile
 */

/**
 * @typedef {object} MeasureOptions
 * @property {string} command
 * @property {string[]} args
 * @property {NodeJS.ProcessEnv} env
 * @property {string} cwd
 * @property {string} outputPrefix  stdout and stderr go to PREFIX.out and PREFIX.err
 * @property {number} [sampleTreeEveryMs]  sample the tree's RSS (costs a /proc scan per sample); off when absent
 */

export function hasGnuTime() {
  return fs.existsSync(GNU_TIME);
}

/**
 * @param {MeasureOptions} options
 * @returns {Promise<Measurement>}
 */
export async function measure(options) {
  const stdoutFile = `${options.outputPrefix}.out`;
  const stderrFile = `${options.outputPrefix}.err`;
  const timeFile = `${options.outputPrefix}.time`;
  const useTime = hasGnuTime();
  const [command, args] = useTime
    ? [GNU_TIME, ['-f', `${TIME_MARK} %U %S %M`, '-o', timeFile, options.command, ...options.args]]
    : [options.command, options.args];
  const stdout = fs.openSync(stdoutFile, 'w');
  const stderr = fs.openSync(stderrFile, 'w');
  const started = performance.now();
  const child = spawn(command, args, {
    env: options.env,
    cwd: options.cwd,
    stdio: ['ignore', stdout, stderr],
  });
  fs.closeSync(stdout);
  fs.closeSync(stderr);
  let peakTreeKb = 0;
  const sampler =
    options.sampleTreeEveryMs !== undefined && child.pid !== undefined
      ? setInterval(() => {
          peakTreeKb = Math.max(peakTreeKb, treeRssKb(/** @type {number} */ (child.pid)));
        }, options.sampleTreeEveryMs)
      : undefined;
  /** @type {number} */
  const exitCode = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  const wallS = (performance.now() - started) / 1000;
  if (sampler) clearInterval(sampler);
  const times = useTime ? parseTimeFile(fs.readFileSync(timeFile, 'utf8')) : null;
  return {
    wallS,
    cpuUserS: times?.userS ?? null,
    cpuSystemS: times?.systemS ?? null,
    peakRssMb: times ? times.maxRssKb / 1024 : null,
    peakTreeRssMb: options.sampleTreeEveryMs !== undefined ? peakTreeKb / 1024 : null,
    exitCode,
    stdoutFile,
    stderrFile,
  };
}

/**
 * GNU time writes "Command exited with non-zero status N" before the format line when the command fails.
 * @param {string} text
 */
export function parseTimeFile(text) {
  const line = text.split('\n').find((l) => l.startsWith(`${TIME_MARK} `));
  if (line === undefined) throw new Error(`no measurement in GNU time output: ${JSON.stringify(text)}`);
  const [, user, system, maxRss] = line.split(' ');
  return { userS: Number(user), systemS: Number(system), maxRssKb: Number(maxRss) };
}

/**
 * Sum of VmRSS over `root` and all its descendants, in kB (one pass over /proc).
 * @param {number} root
 */
export function treeRssKb(root) {
  /** @type {Map<number, number[]>} */
  const children = new Map();
  /** @type {Map<number, number>} */
  const rss = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): state ppid ... ; rss (pages) is field 24.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(entry);
      const ppid = Number(fields[1]);
      rss.set(pid, Number(fields[21]) * 4);
      const siblings = children.get(ppid) ?? [];
      siblings.push(pid);
      children.set(ppid, siblings);
    } catch {
      // exited meanwhile
    }
  }
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = /** @type {number} */ (stack.pop());
    total += rss.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}
