/**
 * Ansible's task language against real lab hosts: a `loop` over three admin
 * networks into hosts.allow (each item its own planned edit of the same
 * file), a task whose planning fails on the host and that `ignore_errors`
 * lets pass, and a task whose `when` reads both registered results. The
 * first run changes the hosts; the second changes nothing, and the task
 * whose condition no longer holds shows as skipped in text, JSON and a saved
 * plan.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLabKinds, LAB_START_TIMEOUT_MS, PLAIN, startLab, SYSTEMD_SERVICE, type Lab } from './lab.js';
import { runCli } from '../support/cli.js';

const NETWORKS = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24'];
const MARKER = '/etc/ssh/sshfix-admin-networks';
const BANNER = '/etc/ssh/sshfix-lab-banner';

interface JsonTask {
  task: string;
  status: string;
  error?: string;
  ignored?: boolean;
}
interface Report {
  hosts: Record<
    string,
    { ok: number; changed: number; failed: number; skipped: number; ignored?: number; tasks: JsonTask[] }
  >;
}
interface SavedPlan {
  hosts: {
    name: string;
    status: string;
    plays: { tasks: { name: string; action: string; messages: string[] }[] }[];
  }[];
}

/** A Jinja template reading the registered results of the loop. */
const MARKER_TEMPLATE = `{{ allowed.results | length }} networks allowed on {{ inventory_hostname }}:
{% for result in allowed.results %}
{{ result.item }}{{ ' (new)' if result.changed else '' }}
{% endfor %}
`;

const PLAYBOOK = `- name: admin access
  hosts: all
  vars:
    admin_networks: ${JSON.stringify(NETWORKS)}
  tasks:
    - name: the banner is already there
      file: { dest: ${BANNER}, mode: "0644" }
      register: banner
      ignore_errors: true
    - name: admin network allowed
      tcp_wrappers:
        allow:
          - daemon: sshd
            clients: ["{{ net }}"]
      loop: "{{ admin_networks }}"
      loop_control: { loop_var: net }
      register: allowed
    - name: record what changed
      template: { src: marker.j2, dest: ${MARKER} }
      when:
        - banner is failed
        - allowed is changed
- name: later play
  hosts: all
  tasks:
    - name: registered results outlive their play
      sshd_config: { settings: { MaxAuthTries: 6 } }
      when: allowed is skipped
`;

describeLabKinds('when, loop, register and ignore_errors on real hosts', [PLAIN, SYSTEMD_SERVICE], (kind) => {
  let lab: Lab;
  let work: string;
  let common: string[];
  let playbook: string;

  beforeAll(async () => {
    lab = await startLab({
      id: kind.kind === 'plain' ? 'jinja' : `jinja${process.pid % 10_000}`,
      hosts: 2,
      ...kind,
    });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-jinja-'));
    playbook = path.join(work, 'admin.yml');
    fs.writeFileSync(playbook, PLAYBOOK);
    fs.writeFileSync(path.join(work, 'marker.j2'), MARKER_TEMPLATE);
    const inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(
      inventory,
      [
        'all:',
        '  vars:',
        '    ansible_user: root',
        `    ansible_ssh_private_key_file: ${lab.privateKeyFile}`,
        '  hosts:',
        ...lab.hosts.map((h) => `    ${h.name}: { ansible_host: ${h.address} }`),
        '',
      ].join('\n'),
    );
    common = ['-i', inventory, '--known-hosts', lab.knownHostsFile];
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('the first run allows three networks and records it; the second changes nothing and skips the record', async () => {
    const allowBefore = await Promise.all(lab.hosts.map((h) => h.readFile('/etc/hosts.allow')));

    const plan = await runCli(['plan', playbook, ...common]);
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(0);
    for (const net of NETWORKS) expect(plan.stdout).toContain(`admin network allowed (item=${net})`);
    expect(plan.stdout).toContain(
      `${BANNER} does not exist, and the task gives no content to create it with`,
    );
    expect(plan.stdout).toContain('...ignoring');
    // A plan changes nothing.
    expect(await Promise.all(lab.hosts.map((h) => h.readFile('/etc/hosts.allow')))).toEqual(allowBefore);

    const apply = await runCli(['apply', playbook, ...common, '--format', 'json']);
    expect(apply.stderr).toBe('');
    expect(apply.code).toBe(0);
    const report = JSON.parse(apply.stdout) as Report;
    for (const host of lab.hosts) {
      const result = report.hosts[host.name]!;
      expect(result).toMatchObject({ failed: 0, ignored: 1, changed: 4, skipped: 1 });
      expect(result.tasks.map((t) => [t.task, t.status])).toEqual([
        ['the banner is already there', 'failed'],
        ...NETWORKS.map((net) => [`admin network allowed (item=${net})`, 'changed']),
        ['record what changed', 'changed'],
        // The later play reads the first play's registered result.
        ['registered results outlive their play', 'skipped'],
      ]);
      expect(result.tasks[0]).toMatchObject({ ignored: true });
      const allow = await host.readFile('/etc/hosts.allow');
      // One rule per network (each item puts its rule first, as a task of its own would); every other line as it was.
      const lines = allow.split('\n');
      const added = lines.filter((l) => NETWORKS.some((net) => l.includes(net.split('/')[0]!)));
      expect([...added].sort()).toEqual(
        NETWORKS.map((net) => `sshd: ${net.replace('/24', '/255.255.255.0')}`),
      );
      expect(lines.filter((l) => !added.includes(l)).join('\n')).toBe(allowBefore[lab.hosts.indexOf(host)]);
      expect(await host.readFile(MARKER)).toBe(
        `3 networks allowed on ${host.name}:\n${NETWORKS.map((net) => `${net} (new)\n`).join('')}`,
      );
      // sshd still lets the controller in through the edited hosts.allow.
      expect((await lab.ssh(host, 'true')).code).toBe(0);
    }

    const allowAfter = await Promise.all(lab.hosts.map((h) => h.readFile('/etc/hosts.allow')));
    const second = await runCli(['apply', playbook, ...common, '--format', 'json']);
    expect(second.code).toBe(0);
    const again = JSON.parse(second.stdout) as Report;
    for (const host of lab.hosts) {
      const result = again.hosts[host.name]!;
      expect(result).toMatchObject({ failed: 0, changed: 0, skipped: 2 });
      expect(result.tasks.at(-2)).toMatchObject({
        task: 'record what changed',
        status: 'skipped',
        error: "skipped: the condition 'allowed is changed' is false",
      });
    }
    expect(await Promise.all(lab.hosts.map((h) => h.readFile('/etc/hosts.allow')))).toEqual(allowAfter);

    const text = await runCli(['plan', playbook, ...common, '--out', path.join(work, 'plan.json')]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/skipped\s+record what changed \[template\]/);
    const saved = JSON.parse(fs.readFileSync(path.join(work, 'plan.json'), 'utf8')) as SavedPlan;
    for (const host of saved.hosts) {
      expect(host.status).toBe('unchanged');
      expect(host.plays[0]!.tasks.at(-1)).toMatchObject({ name: 'record what changed', action: 'skip' });
    }
  });
});
