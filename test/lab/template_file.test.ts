/**
 * `template` and `file` against real OpenSSH servers: a drop-in rendered
 * from the shipped template into /etc/ssh/sshd_config.d/ (validated, reloaded,
 * idempotent), a mode-only fix, removal, and the trap of validating a drop-in
 * alone (TRAPS.md, "Validate the whole tree, not one file").
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeLab, startLab, type Lab, type LabHost } from './lab.js';
import { runCli } from '../support/cli.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DROP_IN = '/etc/ssh/sshd_config.d/60-sshfix.conf';
const SFTP_DROP_IN = '/etc/ssh/sshd_config.d/70-sftp.conf';

/**
 * sshd cannot take `Include` on its command line (`-o Include=%s` is refused:
 * "Include directive not supported as a command-line option"), so the whole
 * tree is checked through a two-line wrapper: the staged drop-in, then the
 * real main file with all its drop-ins. The README documents this recipe.
 */
const WHOLE_TREE_VALIDATE =
  `mkdir -p /run/sshd && t=$(mktemp) && printf 'Include %%s\\nInclude /etc/ssh/sshd_config\\n' %s > "$t" && ` +
  `/usr/sbin/sshd -t -f "$t"; rc=$?; rm -f "$t"; exit $rc`;
const DROP_IN_ALONE_VALIDATE = '/usr/sbin/sshd -t -f %s';

const DROP_IN_PLAYBOOK = `
- name: sshd drop-in
  hosts: all
  vars:
    sshd_settings:
      MaxAuthTries: 4
      LoginGraceTime: 45
  tasks:
    - name: sshfix drop-in
      template:
        src: sshd-drop-in.conf.hbs
        dest: ${DROP_IN}
        mode: "0600"
        validate: ${JSON.stringify(WHOLE_TREE_VALIDATE)}
      notify: reload sshd
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
`;

/** A drop-in that sshd -t accepts alone but that breaks Debian's tree: sshd_config already defines sftp. */
const sftpPlaybook = (validate: string) => `
- name: sftp
  hosts: all
  tasks:
    - name: internal sftp
      file:
        dest: ${SFTP_DROP_IN}
        content: "Subsystem sftp internal-sftp\\n"
        validate: ${JSON.stringify(validate)}
`;

const ABSENT_PLAYBOOK = `
- name: sftp
  hosts: all
  tasks:
    - name: no sftp drop-in
      file: { dest: ${SFTP_DROP_IN}, state: absent }
`;

interface Report {
  hosts: Record<
    string,
    {
      changed: number;
      failed: number;
      tasks: Array<{ status: string; diff: string; error?: string; commands: string[] }>;
    }
  >;
}

async function sshdT(host: LabHost): Promise<Map<string, string>> {
  const out = await host.exec('/usr/sbin/sshd -T');
  return new Map(
    out.stdout
      .trim()
      .split('\n')
      .map((l) => {
        const [k = '', ...v] = l.split(' ');
        return [k, v.join(' ')] as [string, string];
      }),
  );
}

const dropInDir = async (host: LabHost) =>
  (await host.exec('ls -A /etc/ssh/sshd_config.d/')).stdout.trim().split('\n').filter(Boolean);
const modeOf = async (host: LabHost, file: string) => (await host.exec(`stat -c %a ${file}`)).stdout.trim();

describeLab('template and file on real OpenSSH servers', () => {
  let lab: Lab;
  let work: string;

  beforeAll(async () => {
    lab = await startLab({ id: 'tpl', hosts: 2 });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-tpl-'));
    // playbooks/ and templates/ side by side, as in the repository: found through ../templates.
    fs.mkdirSync(path.join(work, 'playbooks'));
    fs.mkdirSync(path.join(work, 'templates'));
    fs.copyFileSync(
      path.join(REPO, 'templates', 'sshd-drop-in.conf.hbs'),
      path.join(work, 'templates', 'sshd-drop-in.conf.hbs'),
    );
  }, 180000);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  function inventoryFor(host: LabHost): string {
    const file = path.join(work, `${host.name}.ini`);
    fs.writeFileSync(
      file,
      `${host.name} ansible_host=${host.address} ansible_user=root ansible_ssh_private_key_file=${lab.privateKeyFile}\n`,
    );
    return file;
  }

  function playbook(name: string, text: string): string {
    const file = path.join(work, 'playbooks', name);
    fs.writeFileSync(file, text);
    return file;
  }

  async function run(command: 'plan' | 'apply', pb: string, host: LabHost, ...extra: string[]) {
    return runCli([command, pb, '-i', inventoryFor(host), '--known-hosts', lab.knownHostsFile, ...extra]);
  }

  async function applyJson(pb: string, host: LabHost) {
    const result = await run('apply', pb, host, '--format', 'json');
    expect(result.stderr).toBe('');
    return { code: result.code, report: (JSON.parse(result.stdout) as Report).hosts[host.name]! };
  }

  test('a templated drop-in: plan, validated apply, reload, then nothing to do; a mode-only fix', async () => {
    const host = lab.hosts[0]!;
    const pb = playbook('drop-in.yml', DROP_IN_PLAYBOOK);
    const mainBefore = await host.readFile('/etc/ssh/sshd_config');

    const plan = await run('plan', pb, host, '--detailed-exitcode');
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain(
      `${DROP_IN} does not exist → created (rendered from ${work}/templates/sshd-drop-in.conf.hbs)`,
    );
    expect(plan.stdout).toContain('+MaxAuthTries 4');
    expect(await dropInDir(host)).not.toContain('60-sshfix.conf');

    const first = await applyJson(pb, host);
    expect(first.code).toBe(0);
    expect(first.report).toMatchObject({ failed: 0, changed: 2 }); // the template and the reload
    expect(await host.readFile(DROP_IN)).toBe(
      '# Managed by sshfix: edits made here are overwritten by the next run.\n' +
        '# sshd reads drop-ins in lexical order and the first value of a keyword wins.\n' +
        'MaxAuthTries 4\nLoginGraceTime 45\n',
    );
    expect(await modeOf(host, DROP_IN)).toBe('600');
    // The effect, not the text: sshd's own view after the reload.
    const effective = await sshdT(host);
    expect([effective.get('maxauthtries'), effective.get('logingracetime')]).toEqual(['4', '45']);
    expect(await host.readFile('/etc/ssh/sshd_config')).toBe(mainBefore);
    // No staged copy left beside the drop-in.
    expect(await dropInDir(host)).toEqual(['60-sshfix.conf']);
    // A new connection from the admin workstation still gets in.
    expect((await lab.ssh(host, 'true', { from: lab.workstationAddress })).code).toBe(0);

    const second = await applyJson(pb, host);
    expect(second).toMatchObject({ code: 0, report: { changed: 0, failed: 0 } });

    // Someone loosens the mode: only a chmod is planned, no diff, the content stays byte-identical.
    await host.exec(`chmod 0644 ${DROP_IN}`);
    const content = await host.readFile(DROP_IN);
    const modePlan = await run('plan', pb, host, '--format', 'json');
    const planned = (JSON.parse(modePlan.stdout) as Report).hosts[host.name]!.tasks[0]!;
    expect(planned).toMatchObject({ status: 'changed', diff: '', commands: [`chmod -- 0600 ${DROP_IN}`] });
    expect((await applyJson(pb, host)).report.failed).toBe(0);
    expect(await modeOf(host, DROP_IN)).toBe('600');
    expect(await host.readFile(DROP_IN)).toBe(content);
    expect((await applyJson(pb, host)).report.changed).toBe(0);
  });

  test('TRAPS "validate the whole tree": sshd -t -f %s passes a drop-in that breaks the tree; the whole-tree check refuses it', async () => {
    const host = lab.hosts[1]!;
    const treeCheck = async () => (await host.exec('mkdir -p /run/sshd; /usr/sbin/sshd -t')).code;
    expect(await treeCheck()).toBe(0);

    // The whole-tree check: refused, the target untouched, no staged copy left.
    const whole = await applyJson(playbook('sftp-whole.yml', sftpPlaybook(WHOLE_TREE_VALIDATE)), host);
    expect(whole.code).toBe(1);
    expect(whole.report.tasks[0]?.status).toBe('failed');
    expect(whole.report.tasks[0]?.error).toContain(`validate rejected the new content of ${SFTP_DROP_IN}`);
    expect(whole.report.tasks[0]?.error).toContain("Subsystem 'sftp' already defined");
    expect(await dropInDir(host)).toEqual([]);
    expect(await treeCheck()).toBe(0);

    // The drop-in alone: sshd -t -f accepts it, and the tree on disk is now broken (a delayed lockout).
    const alone = await applyJson(playbook('sftp-alone.yml', sftpPlaybook(DROP_IN_ALONE_VALIDATE)), host);
    expect(alone).toMatchObject({ code: 0, report: { changed: 1, failed: 0 } });
    expect(await host.readFile(SFTP_DROP_IN)).toBe('Subsystem sftp internal-sftp\n');
    expect(await treeCheck()).not.toBe(0);

    // state: absent removes it; the plan shows the removal; then nothing to do.
    const pb = playbook('absent.yml', ABSENT_PLAYBOOK);
    const plan = await run('plan', pb, host, '--detailed-exitcode');
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain(`rm -f -- ${SFTP_DROP_IN}`);
    expect(plan.stdout).toContain('-Subsystem sftp internal-sftp');
    expect(plan.stdout).toContain(`${SFTP_DROP_IN} exists (1 line) → removed`);
    const removed = await applyJson(pb, host);
    expect(removed).toMatchObject({ code: 0, report: { changed: 1 } });
    expect(await dropInDir(host)).toEqual([]);
    expect(await treeCheck()).toBe(0);
    expect((await applyJson(pb, host)).report.changed).toBe(0);
    expect((await lab.ssh(host, 'true', { from: lab.workstationAddress })).code).toBe(0);
  });
});
