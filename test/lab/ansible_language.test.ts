/**
 * The static playbook language of Ansible against real OpenSSH servers:
 * import_playbook (files found next to the imported playbook), play and task
 * tags with --tags/--skip-tags and `never`, a nameless task, an FQCN alias,
 * handlers reached through `listen`, a `check_mode` task that is shown but
 * never applied, --list-tasks and --start-at-task; a second run changes
 * nothing. And a task's `become: true` for a login that is not root.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLab, startLab, type Lab, type LabHost } from './lab.js';
import { runCli } from '../support/cli.js';

const GRACE_DROP_IN = '/etc/ssh/sshd_config.d/61-grace.conf';
const CHECK_ONLY_FILE = '/etc/ssh/sshfix-check-mode.txt';
const NEVER_FILE = '/etc/sshfix-never.txt';
const HANDLER_MARKER = '/etc/sshfix-handler-marker';

const SITE = `
- import_playbook: plays/hardening.yml
  tags: imported
`;

const HARDENING = `
- name: language
  hosts: all
  tags: [ssh]
  tasks:
    - sshd_config: { settings: { MaxAuthTries: 4 } }
      tags: auth
      notify: ssh changed
    - name: grace time
      ansible.builtin.template:
        src: grace.conf.hbs
        dest: ${GRACE_DROP_IN}
        mode: "0600"
      notify: ssh changed
    - name: check only
      file: { dest: ${CHECK_ONLY_FILE}, content: "planned, never written\\n" }
      check_mode: true
      notify: ssh changed
    - name: debug only
      file: { dest: ${NEVER_FILE}, content: "never\\n" }
      tags: [never, debug]
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
      listen: ssh changed
    - file: { dest: ${HANDLER_MARKER}, content: "ran\\n" }
      listen: [ssh changed]
`;

interface Report {
  hosts: Record<
    string,
    {
      changed: number;
      failed: number;
      tasks: Array<{ task: string; status: string; handler: boolean; messages: string[]; error?: string }>;
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

const exists = async (host: LabHost, file: string) => (await host.exec(`test -e ${file}`)).code === 0;

/** Every file sshfix may touch here, with its content's digest: equal twice means nothing changed. */
const fingerprint = async (host: LabHost) =>
  (
    await host.exec(
      `find /etc/ssh /etc/sshfix-handler-marker /etc/sshfix-never.txt -type f 2>/dev/null | sort | xargs sha256sum`,
    )
  ).stdout;

describeLab('the Ansible playbook language on real OpenSSH servers', () => {
  let lab: Lab;
  let work: string;
  let site: string;

  beforeAll(async () => {
    lab = await startLab({ id: 'lang', hosts: 2 });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-lang-'));
    fs.mkdirSync(path.join(work, 'plays', 'templates'), { recursive: true });
    site = path.join(work, 'site.yml');
    fs.writeFileSync(site, SITE);
    fs.writeFileSync(path.join(work, 'plays', 'hardening.yml'), HARDENING);
    // Next to the imported playbook, not the importing one: found through its templates/.
    fs.writeFileSync(path.join(work, 'plays', 'templates', 'grace.conf.hbs'), 'LoginGraceTime 45\n');
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

  async function run(command: 'plan' | 'apply', host: LabHost, ...extra: string[]) {
    return runCli([command, site, '-i', inventoryFor(host), '--known-hosts', lab.knownHostsFile, ...extra]);
  }

  async function applyJson(host: LabHost, ...extra: string[]) {
    const result = await run('apply', host, '--format', 'json', ...extra);
    expect(result.stderr).toBe('');
    const report = (JSON.parse(result.stdout) as Report).hosts[host.name]!;
    const statuses = report.tasks.map((t) => [t.task, t.status]);
    return { code: result.code, report, statuses };
  }

  test('tags, listen, check_mode, a nameless task, an FQCN alias and import_playbook; then nothing to do', async () => {
    const host = lab.hosts[0]!;
    const nameless = 'sshd_config: settings={MaxAuthTries: 4}';

    const listed = await runCli(['plan', site, '--list-tasks', '--skip-tags', 'auth', '-i', 'unused.ini']);
    expect(listed).toMatchObject({ code: 0, stderr: '' });
    expect(listed.stdout).toContain('play #1 (all): language\tTAGS: [imported, ssh]');
    expect(listed.stdout).toContain('grace time\tTAGS: [imported, ssh]');
    expect(listed.stdout).toContain('check only (check_mode)\tTAGS: [imported, ssh]');
    expect(listed.stdout).not.toContain(nameless);
    expect(listed.stdout).not.toContain('debug only');

    // --tags auth: only the nameless task, and both handlers that listen to what it notifies.
    const auth = await applyJson(host, '--tags', 'auth');
    expect(auth.code).toBe(0);
    expect(auth.statuses).toEqual([
      [nameless, 'changed'],
      ['reload sshd', 'changed'],
      [`file: dest=${HANDLER_MARKER} content=ran`, 'changed'],
    ]);
    expect((await sshdT(host)).get('maxauthtries')).toBe('4');
    expect(await host.readFile(HANDLER_MARKER)).toBe('ran\n');
    expect(await exists(host, GRACE_DROP_IN)).toBe(false);
    await host.exec(`rm -f ${HANDLER_MARKER}`);

    // --start-at-task: the tasks before it are not even planned.
    const started = await run('plan', host, '--start-at-task', 'grace time', '--format', 'json');
    expect(started.stderr).toBe('');
    const planned = (JSON.parse(started.stdout) as Report).hosts[host.name]!.tasks;
    expect(planned.filter((t) => !t.handler).map((t) => t.task)).toEqual(['grace time', 'check only']);

    // Everything: the template through its FQCN; the check_mode task is shown as a change, never made.
    const all = await applyJson(host);
    expect(all.code).toBe(0);
    expect(all.statuses).toEqual([
      [nameless, 'ok'],
      ['grace time', 'changed'],
      ['check only', 'changed'],
      ['reload sshd', 'changed'],
      [`file: dest=${HANDLER_MARKER} content=ran`, 'changed'],
    ]);
    expect(all.report.tasks[2]!.messages).toContain('check_mode: planned only, never applied');
    expect(await host.readFile(GRACE_DROP_IN)).toBe('LoginGraceTime 45\n');
    expect((await sshdT(host)).get('logingracetime')).toBe('45');
    expect(await exists(host, CHECK_ONLY_FILE)).toBe(false);
    expect(await exists(host, NEVER_FILE)).toBe(false);
    // A new connection from the admin workstation still gets in.
    expect((await lab.ssh(host, 'true', { from: lab.workstationAddress })).code).toBe(0);

    // Again: nothing is applied; the check_mode task alone still shows what it would do, and notifies nothing.
    const before = await fingerprint(host);
    const second = await applyJson(host);
    expect(second.code).toBe(0);
    expect(second.statuses).toEqual([
      [nameless, 'ok'],
      ['grace time', 'ok'],
      ['check only', 'changed'],
    ]);
    expect(await fingerprint(host)).toBe(before);
    expect(await exists(host, CHECK_ONLY_FILE)).toBe(false);

    // `never` runs only when asked for by one of its tags.
    const debug = await applyJson(host, '--tags', 'debug');
    expect(debug.statuses).toEqual([['debug only', 'changed']]);
    expect(await host.readFile(NEVER_FILE)).toBe('never\n');
  });

  test("a task's become: true runs it through sudo for a login that is not root", async () => {
    const host = lab.hosts[1]!;
    const user = 'deploy';
    const key = fs.readFileSync(`${lab.privateKeyFile}.pub`, 'utf8');
    // /home is the machine's: the user's home lives in the host's own /run.
    const setup = [
      `useradd -M -d /run/home-${user} -s /bin/sh ${user}`,
      `mkdir -p /run/home-${user}/.ssh && cat > /run/home-${user}/.ssh/authorized_keys`,
      `chown -R ${user}: /run/home-${user} && chmod 700 /run/home-${user}/.ssh`,
      `echo '${user} ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/${user} && chmod 0440 /etc/sudoers.d/${user}`,
    ].join(' && ');
    const made = await host.exec(setup, { stdin: key });
    expect(made.stderr).toBe('');
    const inventory = path.join(work, 'deploy.ini');
    fs.writeFileSync(
      inventory,
      `${host.name} ansible_host=${host.address} ansible_user=${user} ansible_ssh_private_key_file=${lab.privateKeyFile}\n`,
    );
    const task = (become: string) => `
- hosts: all
  tasks:
    - name: root-owned file
      file: { dest: /etc/sshfix-become-test, content: "x\\n", mode: "0600" }${become}
`;
    const apply = async (text: string) => {
      const pb = path.join(work, 'become.yml');
      fs.writeFileSync(pb, text);
      const result = await runCli([
        'apply',
        pb,
        '-i',
        inventory,
        '--known-hosts',
        lab.knownHostsFile,
        '--format',
        'json',
      ]);
      const report = (JSON.parse(result.stdout) as Report).hosts[host.name]!;
      return { code: result.code, tasks: report.tasks.map((t) => [t.task, t.status]) };
    };

    // As the login user, /etc is not writable: the run fails and nothing is there.
    expect((await apply(task(''))).code).not.toBe(0);
    expect(await exists(host, '/etc/sshfix-become-test')).toBe(false);

    const becoming = task('\n      become: true');
    expect(await apply(becoming)).toEqual({ code: 0, tasks: [['root-owned file', 'changed']] });
    expect((await host.exec('stat -c %U:%a /etc/sshfix-become-test')).stdout.trim()).toBe('root:600');
    expect(await apply(becoming)).toEqual({ code: 0, tasks: [['root-owned file', 'ok']] });
  });
});
