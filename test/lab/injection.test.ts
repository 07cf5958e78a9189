/**
 * Hostile input (issue #4; TRAPS.md "The remote login shell parses every
 * exec string"): shell metacharacters, `$(...)`, backticks, quotes and
 * newlines go through every string field of every resource that takes one,
 * in a real apply (plan, validate, write, verify, backup, confirm). A canary
 * file is never created, and no configuration line appears that the
 * playbook did not ask for.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeLab, startLab, type Lab, type LabHost } from './lab.js';
import { runCli } from '../support/cli.js';

const CANARY = '/run/sshfix-injection-canary';
/** A template on the controller whose output is plain text. */
const TEMPLATE = path.join(os.tmpdir(), 'sshfix-injection.hbs');

/** Ways to run `touch CANARY` if anything evaluated the value as shell. */
const PAYLOADS = [
  `$(touch ${CANARY})`,
  `\`touch ${CANARY}\``,
  `'; touch ${CANARY}; '`,
  `"; touch ${CANARY}; "`,
  `x && touch ${CANARY} || touch ${CANARY}`,
  `$(IFS=_;cmd=touch_${CANARY};$cmd)`,
];
const NEWLINE_PAYLOADS = [`x\ntouch ${CANARY}`, `x\rPermitRootLogin yes`, `x\nPermitRootLogin yes`];

/** YAML double-quoted scalar: JSON string syntax is valid YAML. */
const yamlString = (value: string): string => JSON.stringify(value);

interface Case {
  name: string;
  task: (payload: string) => string;
  /** Files to check: entirely old, or containing the payload only where asked. */
  files: string[];
}

const CASES: Case[] = [
  {
    name: 'sshd_config settings value',
    task: (p) => `sshd_config: { settings: { Banner: ${yamlString(`/etc/issue.net ${p}`)} } }`,
    files: ['/etc/ssh/sshd_config'],
  },
  {
    name: 'sshd_config path',
    task: (p) =>
      `sshd_config: { path: ${yamlString(`/etc/ssh/sshd_config${p}`)}, settings: { MaxAuthTries: 4 } }`,
    files: ['/etc/ssh/sshd_config'],
  },
  {
    name: 'file content',
    task: (p) => `file: { dest: /etc/sshfix-inj-content, content: ${yamlString(`${p}\n`)} }`,
    files: ['/etc/sshfix-inj-content'],
  },
  {
    name: 'file dest',
    task: (p) =>
      `file: { dest: ${yamlString(`/etc/sshfix-inj-dest ${p.replace(/\//g, '_')}`)}, content: "x\\n" }`,
    files: [],
  },
  {
    name: 'file owner and group',
    task: (p) =>
      `file: { dest: /etc/sshfix-inj-owner, content: "x\\n", owner: ${yamlString(p)}, group: ${yamlString(p)} }`,
    files: ['/etc/sshfix-inj-owner'],
  },
  {
    name: 'file mode',
    task: (p) => `file: { dest: /etc/sshfix-inj-mode, content: "x\\n", mode: ${yamlString(p)} }`,
    files: ['/etc/sshfix-inj-mode'],
  },
  {
    name: 'tcp_wrappers daemon and client',
    task: (p) => `tcp_wrappers: { daemon: ${yamlString(p)}, not_denied: [${yamlString(`10.9.9.9 ${p}`)}] }`,
    files: ['/etc/hosts.deny', '/etc/hosts.allow'],
  },
  {
    name: 'tcp_wrappers files',
    task: (p) =>
      `tcp_wrappers: { allow_file: ${yamlString(`/etc/hosts.allow${p}`)}, deny_file: ${yamlString(`/etc/hosts.deny${p}`)}, not_denied: [10.9.9.9] }`,
    files: [],
  },
  {
    name: 'fail2ban ignoreip, unban and config_file',
    task: (p) =>
      `fail2ban: { ignoreip: [${yamlString(p)}], unban: [${yamlString(p)}], config_file: ${yamlString(`/etc/fail2ban/jail.local${p}`)} }`,
    files: [],
  },
  {
    name: 'fail2ban jail settings',
    task: (p) => `fail2ban: { jails: { sshd: { bantime: ${yamlString(p)} } } }`,
    files: [],
  },
  {
    name: 'firewall sources and backend',
    task: (p) => `firewall: { allow_ssh_from: [${yamlString(p)}], backend: ${yamlString(p)} }`,
    files: [],
  },
  {
    name: 'template dest',
    task: (p) =>
      `template: { src: ${yamlString(TEMPLATE)}, dest: ${yamlString(`/etc/sshfix-inj-tpl ${p.replace(/\//g, '_')}`)} }`,
    files: [],
  },
  {
    name: 'service name',
    task: (p) => `service: { name: ${yamlString(p)}, state: reloaded }`,
    files: [],
  },
];

describeLab('hostile input never reaches a shell', () => {
  let lab: Lab;
  let host: LabHost;
  let work: string;
  let inventory: string;

  beforeAll(async () => {
    lab = await startLab({ id: 'inj', hosts: 1 });
    host = lab.hosts[0]!;
    fs.writeFileSync(TEMPLATE, 'managed by a test\n');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-inj-'));
    inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(
      inventory,
      `all:\n  hosts:\n    ${host.name}: { ansible_host: ${host.address}, ansible_user: root, ansible_ssh_private_key_file: ${lab.privateKeyFile} }\n`,
    );
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  async function canaryExists(): Promise<boolean> {
    const onHost = await host.exec(`test -e ${CANARY}`);
    return onHost.code === 0 || fs.existsSync(CANARY);
  }

  async function directiveLines(file: string): Promise<string[]> {
    const r = await host.exec(
      `grep -v '^[[:space:]]*#' '${file}' 2>/dev/null | grep -v '^[[:space:]]*$' || true`,
    );
    return r.stdout.split('\n').filter(Boolean);
  }

  async function applyTask(taskYaml: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const pb = path.join(work, 'playbook.yml');
    fs.writeFileSync(
      pb,
      `- name: hostile\n  hosts: all\n  tasks:\n    - name: hostile task\n      ${taskYaml}\n`,
    );
    return runCli([
      'apply',
      pb,
      '-i',
      inventory,
      '--known-hosts',
      lab.knownHostsFile,
      '--format',
      'json',
      '--confirm-timeout',
      '15',
    ]);
  }

  for (const c of CASES) {
    test(`${c.name}: metacharacters are data`, async () => {
      const before = new Map<string, string[]>();
      for (const f of c.files) before.set(f, await directiveLines(f));
      const sshdBefore = await directiveLines('/etc/ssh/sshd_config');
      for (const payload of PAYLOADS) {
        const run = await applyTask(c.task(payload));
        expect({ payload, canary: await canaryExists() }).toEqual({ payload, canary: false });
        // Exit 0 (written literally) or 1 (refused: bad owner, mode, name...), never a crash.
        const outcome =
          run.code === 0 || run.code === 1 ? 'ok' : `exit ${run.code}: ${run.stdout}${run.stderr}`;
        expect({ payload, outcome }).toEqual({ payload, outcome: 'ok' });
        for (const f of c.files) {
          const added = (await directiveLines(f)).filter((l) => !before.get(f)!.includes(l));
          // At most the one line asked for, and it carries the payload literally.
          expect(added.length).toBeLessThanOrEqual(1);
          for (const line of added)
            expect(line).toContain(payload.trim().split(/\s+/)[0]!.replace(/^["']/, ''));
        }
        // Never a line the playbook did not ask for in sshd_config (PermitRootLogin, Match...).
        const sshdAdded = (await directiveLines('/etc/ssh/sshd_config')).filter(
          (l) => !sshdBefore.includes(l),
        );
        expect(sshdAdded.every((l) => /^Banner |^MaxAuthTries /.test(l))).toBe(true);
      }
      // Leave the host as it was for the next case.
      await host.exec(`rm -f /etc/sshfix-inj-* ${CANARY}`);
      const sshdNow = await directiveLines('/etc/ssh/sshd_config');
      if (sshdNow.join('\n') !== sshdBefore.join('\n')) {
        await host.exec(
          `sed -i '/^Banner \\/etc\\/issue.net /d; /^MaxAuthTries 4$/d' /etc/ssh/sshd_config && kill -HUP $(cat /run/sshd.pid)`,
        );
      }
      // A SIGHUP makes sshd re-execute: for a moment nothing listens, so a login is retried.
      let code: number | null = null;
      for (let attempt = 0; attempt < 40 && code !== 0; attempt++) {
        if (attempt > 0) await sleep(250);
        code = (await lab.ssh(host, 'true')).code;
      }
      expect(code).toBe(0);
    }, 240_000);
  }

  test('newlines and carriage returns in directive values are refused before the host is touched', async () => {
    const before = await host.readFile('/etc/ssh/sshd_config');
    const runDirs = async () => (await host.exec('ls /var/backups/sshfix 2>/dev/null | wc -l')).stdout.trim();
    const runsBefore = await runDirs();
    for (const payload of NEWLINE_PAYLOADS) {
      const run = await applyTask(`sshd_config: { settings: { Banner: ${yamlString(payload)} } }`);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/newline or control character/);
      expect(await canaryExists()).toBe(false);
    }
    expect(await host.readFile('/etc/ssh/sshd_config')).toBe(before);
    // Refused while reading the playbook: no transaction was even started.
    expect(await runDirs()).toBe(runsBefore);
  }, 120_000);
});
