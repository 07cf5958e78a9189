#!/usr/bin/env node
// @ts-check
/**
 * `npm run bench:validate [-- --tasks 1000,4000,16000,64000] [--hosts 10]`
 *
 * How `sshfix validate PLAYBOOK -i INVENTORY` scales with the size of the
 * playbook: for each task count, a generated playbook (sshd_config, file,
 * firewall and tcp_wrappers tasks with templated values, and a notified
 * handler) is checked against a generated inventory, every run timed as a
 * whole process. Loading must be linear in the number of tasks and checking
 * linear in tasks x hosts, so the time per task and host must stay flat as
 * the playbook grows. Next to it, the time and memory of parsing the same
 * file with the `yaml` package alone: the part of the cost that is the YAML
 * library's.
 *
 * No lab, no root, no network: it never connects. Needs `npm run build`
 * first (it runs dist/). Exits 1 when a validation does not pass.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hasGnuTime, measure } from './lib/measure.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'bin.js');

function usage() {
  return [
    'usage: npm run bench:validate -- [--tasks N,N,...] [--hosts H]',
    '  --tasks LIST  task counts to measure (default 1000,4000,16000,64000)',
    '  --hosts H     inventory hosts every task is rendered and checked for (default 10)',
  ].join('\n');
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      tasks: { type: 'string', default: '1000,4000,16000,64000' },
      hosts: { type: 'string', default: '10' },
      help: { type: 'boolean', default: false },
    },
  });
  const tasks = values.tasks.split(',').map((t) => Number(t.trim()));
  const hosts = Number(values.hosts);
  for (const n of [...tasks, hosts]) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`counts must be positive integers\n${usage()}`);
  }
  return { help: values.help, tasks: [...new Set(tasks)].sort((a, b) => a - b), hosts };
}

/**
 * Four kinds of task in turn, each with a templated value, every fourth one
 * notifying the handler.
 * @param {number} count
 */
function generatedPlaybook(count) {
  const lines = [
    '- name: generated',
    '  hosts: all',
    '  vars:',
    '    tries: 4',
    '    admins: [10.20.0.0/16, 192.0.2.7]',
    '  tasks:',
  ];
  for (let i = 0; i < count; i++) {
    lines.push(`    - name: task ${i}`);
    switch (i % 4) {
      case 0:
        lines.push(
          '      sshd_config:',
          '        settings:',
          '          MaxAuthTries: "{{ tries }}"',
          `          MaxSessions: ${(i % 10) + 1}`,
          '      notify: reload sshd',
        );
        break;
      case 1:
        lines.push(
          '      file:',
          `        dest: /etc/sshfix-bench/${i}.conf`,
          '        content: "host={{ inventory_hostname }} tries={{ tries }}\\n"',
          '        mode: "0644"',
        );
        break;
      case 2:
        lines.push('      firewall:', '        allow_ssh_from: "{{ admins }}"', '        port: 22');
        break;
      default:
        lines.push(
          '      tcp_wrappers:',
          '        allow:',
          '          - daemon: sshd',
          '            clients: "{{ admins }}"',
        );
    }
  }
  lines.push('  handlers:', '    - name: reload sshd', '      service: { name: sshd, state: reloaded }', '');
  return lines.join('\n');
}

/** @param {number} count */
function generatedInventory(count) {
  const hosts = Array.from(
    { length: count },
    (_, i) => `    host${i}: { ansible_host: 192.0.2.${(i % 250) + 1}, tries: ${(i % 5) + 3} }`,
  );
  return ['all:', '  vars:', '    ansible_user: root', '  hosts:', ...hosts, ''].join('\n');
}

/** Parses the file with the `yaml` package and nothing else, keeping what sshfix keeps (document, data). */
const YAML_ALONE = `
import fs from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
const lineCounter = new LineCounter();
const doc = parseDocument(fs.readFileSync(process.argv[1], 'utf8'), { lineCounter });
if (doc.errors.length > 0 || !Array.isArray(doc.toJS())) process.exit(1);
`;

/** @param {number} value @param {number} digits */
const fixed = (value, digits) => value.toFixed(digits);

async function main() {
  const options = parseOptions();
  if (options.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (!fs.existsSync(CLI)) throw new Error('dist/cli/bin.js is missing: run `npm run build` first');
  if (!hasGnuTime())
    process.stderr.write('GNU time (/usr/bin/time) is missing: no CPU or peak RSS figures\n');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-bench-validate-'));
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  try {
    const inventory = path.join(dir, 'hosts.yml');
    fs.writeFileSync(inventory, generatedInventory(options.hosts));
    /** @type {{ tasks: number, bytes: number, wallS: number, peakRssMb: number | null, usPerTaskHost: number, yamlWallS: number, yamlPeakRssMb: number | null }[]} */
    const rows = [];
    for (const tasks of options.tasks) {
      const playbook = path.join(dir, `tasks-${tasks}.yml`);
      fs.writeFileSync(playbook, generatedPlaybook(tasks));
      const prefix = path.join(dir, `tasks-${tasks}`);
      const run = await measure({
        command: process.execPath,
        args: [CLI, 'validate', playbook, '-i', inventory],
        env,
        cwd: ROOT,
        outputPrefix: prefix,
      });
      if (run.exitCode !== 0) {
        process.stderr.write(fs.readFileSync(`${prefix}.err`, 'utf8'));
        throw new Error(`validate failed on ${tasks} tasks (exit ${run.exitCode})`);
      }
      const yaml = await measure({
        command: process.execPath,
        args: ['--input-type=module', '-e', YAML_ALONE, playbook],
        env,
        cwd: ROOT,
        outputPrefix: `${prefix}-yaml`,
      });
      if (yaml.exitCode !== 0) throw new Error(`the yaml package could not parse ${playbook}`);
      rows.push({
        tasks,
        bytes: fs.statSync(playbook).size,
        wallS: run.wallS,
        peakRssMb: run.peakRssMb,
        usPerTaskHost: (run.wallS * 1e6) / (tasks * options.hosts),
        yamlWallS: yaml.wallS,
        yamlPeakRssMb: yaml.peakRssMb,
      });
      process.stderr.write(`${tasks} tasks: ${fixed(run.wallS, 2)} s\n`);
    }
    const mb = (/** @type {number | null} */ v) => (v === null ? '–' : fixed(v, 0));
    const table = [
      `sshfix validate, ${options.hosts} hosts (wall time of the whole process; yaml = the yaml package parsing the file alone)`,
      '',
      '| tasks | file MB | wall s | µs per task x host | peak RSS MB | yaml wall s | yaml peak RSS MB |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map(
        (r) =>
          `| ${r.tasks} | ${fixed(r.bytes / 1e6, 1)} | ${fixed(r.wallS, 2)} | ${fixed(r.usPerTaskHost, 1)} | ${mb(r.peakRssMb)} | ${fixed(r.yamlWallS, 2)} | ${mb(r.yamlPeakRssMb)} |`,
      ),
    ];
    const first = rows[0];
    const last = rows.at(-1);
    if (first && last && last !== first) {
      // Start-up (~0.3 s) weighs on the smallest run: the ratio falls towards 1 as sizes grow.
      table.push(
        '',
        `time per task x host, ${last.tasks} tasks / ${first.tasks} tasks: ${fixed(last.usPerTaskHost / first.usPerTaskHost, 2)} (linear: about 1 or less)`,
      );
    }
    process.stdout.write(`${table.join('\n')}\n`);
    return 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
