/**
 * Issue #16's "done when": a playbook written as an Ansible user writes it
 * runs unchanged against lab hosts of both kinds. It uses a fact in `when`
 * (PerSourcePenaltyExemptList only where sshd is >= 9.8: skipped on the plain
 * kind's 9.2, applied on the systemd kind's 10.0), a `loop` over the admin
 * networks, `register` read by a later task's `when` and template, `tags`
 * (`--tags` runs only what it names), `vars_files` with a become password in
 * a file encrypted by the real `ansible-vault`, play-level `become`, a
 * nameless task, FQCN module names and a handler reached through `listen`.
 * The second full run changes nothing.
 *
 * Needs `ansible-vault` (Debian package ansible-core, installed by
 * scripts/install-lab-packages.sh) and sudo on the hosts.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLabKinds, LAB_START_TIMEOUT_MS, PLAIN, startLab, SYSTEMD_SERVICE, type Lab } from './lab.js';
import { runCli } from '../support/cli.js';

const USER = 'ansdeploy';
const SUDO_PASSWORD = 'Ansible-sudo-Pw-8c2f1a';
const VAULT_PASSWORD = 'ansible lab vault 4e7b';
const NETWORKS = ['10.20.0.0/16', '192.0.2.0/24', '198.51.100.0/24'];
/** How hosts.allow writes them: TCP wrappers before 7.6-q.26 read only net/mask. */
const ALLOWED = [
  'sshd: 10.20.0.0/255.255.0.0',
  'sshd: 192.0.2.0/255.255.255.0',
  'sshd: 198.51.100.0/255.255.255.0',
];
const RECORD = '/etc/ssh/admin-networks.txt';

const PLAYBOOK = `---
- name: Keep SSH reachable for the admin networks
  hosts: sshd_servers
  become: true
  vars_files:
    - vars/networks.yml
    - vars/secrets.yml
  tasks:
    - name: Admin networks pass TCP wrappers
      tcp_wrappers:
        allow:
          - daemon: sshd
            clients: ["{{ item }}"]
      loop: "{{ admin_networks }}"
      register: wrappers
      tags: [wrappers]

    - name: Exempt the admin networks from PerSourcePenalties
      sshd_config:
        settings:
          PerSourcePenaltyExemptList: "{{ admin_networks | join(',') }}"
      when: ansible_facts.sshd.version is version('9.8', '>=')
      notify: sshd config changed
      tags: [sshd]

    - ansible.builtin.template:
        src: admin-networks.txt.j2
        dest: ${RECORD}
        mode: "0644"
      when: wrappers is changed
      tags: [record]

  handlers:
    - name: reload sshd
      ansible.builtin.service:
        name: ssh
        state: reloaded
      listen: sshd config changed
`;

const TEMPLATE = `# Managed by sshfix on {{ inventory_hostname }} ({{ ansible_distribution }} {{ ansible_distribution_major_version }})
{% for net in admin_networks %}
{{ net }}
{% endfor %}
`;

function ansibleVault(args: string[], cwd: string): void {
  try {
    execFileSync('ansible-vault', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error('ansible-vault is not installed (apt-get install -y ansible-core)', { cause: error });
    throw error;
  }
}

interface JsonReport {
  hosts: Record<string, { changed: number; failed: number; tasks: { task: string; status: string }[] }>;
}

describeLabKinds('an Ansible-written playbook runs unchanged', [PLAIN, SYSTEMD_SERVICE], (kind) => {
  const newSshd = kind.kind === 'systemd';
  let lab: Lab;
  let work: string;
  let common: string[];

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-ansible-'));
    fs.mkdirSync(path.join(work, 'vars'));
    fs.writeFileSync(
      path.join(work, 'vars/networks.yml'),
      `admin_networks:\n${NETWORKS.map((n) => `  - ${n}\n`).join('')}`,
    );
    fs.writeFileSync(path.join(work, 'vars/secrets.yml'), `ansible_become_password: ${SUDO_PASSWORD}\n`);
    fs.writeFileSync(path.join(work, 'vault-pass.txt'), `${VAULT_PASSWORD}\n`);
    ansibleVault(['encrypt', '--vault-password-file', 'vault-pass.txt', 'vars/secrets.yml'], work);
    fs.writeFileSync(path.join(work, 'site.yml'), PLAYBOOK);
    fs.writeFileSync(path.join(work, 'admin-networks.txt.j2'), TEMPLATE);

    lab = await startLab({ id: `ans${newSshd ? 's' : 'p'}${process.pid % 1000}`, hosts: 2, ...kind });
    const key = fs.readFileSync(`${lab.privateKeyFile}.pub`, 'utf8');
    // A login that is not root, whose sudo rule wants the password kept in the vault.
    const setup = [
      `useradd -M -d /run/home-${USER} -s /bin/sh ${USER}`,
      `printf '%s:%s\\n' ${USER} '${SUDO_PASSWORD}' | chpasswd`,
      `mkdir -p /run/home-${USER}/.ssh && cat > /run/home-${USER}/.ssh/authorized_keys`,
      `chown -R ${USER}: /run/home-${USER} && chmod 700 /run/home-${USER}/.ssh`,
      `echo '${USER} ALL=(ALL:ALL) ALL' > /etc/sudoers.d/${USER} && chmod 0440 /etc/sudoers.d/${USER}`,
    ].join(' && ');
    for (const host of lab.hosts) {
      const r = await host.exec(setup, { stdin: key });
      if (r.code !== 0) throw new Error(`setting up ${USER} on ${host.name}: ${r.stderr}`);
    }
    const inventory = path.join(work, 'inventory.ini');
    fs.writeFileSync(
      inventory,
      [
        '[sshd_servers]',
        ...lab.hosts.map((h) => `${h.name} ansible_host=${h.address}`),
        '',
        '[sshd_servers:vars]',
        `ansible_user=${USER}`,
        `ansible_ssh_private_key_file=${lab.privateKeyFile}`,
        '',
      ].join('\n'),
    );
    common = [
      '-i',
      inventory,
      '--known-hosts',
      lab.knownHostsFile,
      '--vault-password-file',
      path.join(work, 'vault-pass.txt'),
      '--confirm-timeout',
      '30',
    ];
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const apply = async (extra: string[] = []): Promise<JsonReport> => {
    const run = await runCli(['apply', path.join(work, 'site.yml'), ...common, '--format', 'json', ...extra]);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    expect(run.stdout).not.toContain(SUDO_PASSWORD);
    return JSON.parse(run.stdout) as JsonReport;
  };

  test('--tags wrappers first, then the whole playbook, then nothing left to change', async () => {
    const onlyWrappers = await apply(['--tags', 'wrappers']);
    for (const host of lab.hosts) {
      expect(onlyWrappers.hosts[host.name]!.tasks.map((t) => [t.task, t.status])).toEqual(
        NETWORKS.map((n) => [`Admin networks pass TCP wrappers (item=${n})`, 'changed']),
      );
      const allow = await host.readFile('/etc/hosts.allow');
      for (const line of ALLOWED) expect(allow).toContain(line);
      expect((await host.exec(`test -e ${RECORD}`)).code).not.toBe(0);
    }

    // The wrappers are in place now: the loop changes nothing, so neither does the record.
    const full = await apply();
    for (const host of lab.hosts) {
      const statuses = Object.fromEntries(full.hosts[host.name]!.tasks.map((t) => [t.task, t.status]));
      expect(statuses['Exempt the admin networks from PerSourcePenalties']).toBe(
        newSshd ? 'changed' : 'skipped',
      );
      expect(statuses['reload sshd']).toBe(newSshd ? 'changed' : undefined);
      const exemption = await host.exec('sshd -T | grep -i ^persourcepenaltyexemptlist || true');
      // sshfix adds each network's v4-mapped IPv6 form (sshd sees those on a dual-stack listener).
      if (newSshd) for (const net of NETWORKS) expect(exemption.stdout.split(/[ ,\n]/)).toContain(net);
      else expect(exemption.stdout).toBe('');
      const recordTask = Object.keys(statuses).find((name) => name.includes('admin-networks.txt.j2'));
      expect(recordTask === undefined ? undefined : statuses[recordTask]).toBe('skipped');
    }

    // A network dropped by hand: the loop puts it back, so the record is written, as root.
    for (const host of lab.hosts) await host.exec(`sed -i '/192\\.0\\.2\\.0/d' /etc/hosts.allow`);
    const repaired = await apply();
    for (const host of lab.hosts) {
      expect(repaired.hosts[host.name]).toMatchObject({ failed: 0 });
      const record = await host.readFile(RECORD);
      expect(record).toMatch(new RegExp(`^# Managed by sshfix on ${host.name} \\(Debian \\d+\\)\\n`));
      for (const net of NETWORKS) expect(record).toContain(`${net}\n`);
      expect((await host.exec(`stat -c %U ${RECORD}`)).stdout.trim()).toBe('root');
    }

    const again = await runCli(['apply', path.join(work, 'site.yml'), ...common, '--detailed-exitcode']);
    expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: '' });
  });
});
