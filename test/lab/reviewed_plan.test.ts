/**
 * The review flow end to end on real hosts: `plan --out`, `show --format
 * markdown` for the pull request, a hand edit on one host after the review,
 * then `apply plan.json`: the edited host is refused as stale and left as it
 * is, the others get exactly the reviewed change; applying the same plan
 * again changes nothing. A tampered plan, or one older than --max-age, is
 * refused before any host is touched.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit_codes.js';
import { readPlanFile } from '../../src/cli/plan_file_io.js';
import { runCli } from '../support/cli.js';
import {
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  labInventory,
  PLAIN,
  startLab,
  SYSTEMD_SERVICE,
  type Lab,
  type LabHost,
} from './lab.js';

describeLabKinds('a reviewed plan is applied as reviewed', [PLAIN, SYSTEMD_SERVICE], (kind) => {
  let lab: Lab;
  let work: string;
  let hosts: [LabHost, LabHost, LabHost];
  let playbook: string;
  let inventory: string;
  let planFile: string;
  let common: string[];
  const HAND_EDIT = 'sshd: 192.0.2.98\n';
  const allowFiles = () => Promise.all(hosts.map((h) => h.readFile('/etc/hosts.allow')));

  beforeAll(async () => {
    lab = await startLab({
      id: kind.kind === 'plain' ? 'rvp' : `rvp${process.pid % 10_000}`,
      hosts: 3,
      ...kind,
    });
    hosts = lab.hosts as [LabHost, LabHost, LabHost];
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-reviewed-'));
    playbook = path.join(work, 'site.yml');
    fs.writeFileSync(
      playbook,
      [
        '- name: admin network',
        '  hosts: all',
        '  tasks:',
        '    - name: admin network allowed',
        '      tcp_wrappers:',
        '        allow:',
        '          - clients: ["{{ admin_network }}"]',
        '',
      ].join('\n'),
    );
    inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(inventory, labInventory(lab));
    planFile = path.join(work, 'plan.json');
    common = ['--known-hosts', lab.knownHostsFile];
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('plan --out, show markdown, a hand edit, apply: the edited host is stale, the others applied; then nothing', async () => {
    const before = await allowFiles();
    const plan = await runCli(['plan', playbook, '-i', inventory, ...common, '--out', planFile]);
    expect(plan.code).toBe(EXIT.ok);
    expect(plan.stdout).toContain('to_change=1');
    const doc = await readPlanFile(planFile);
    expect(doc.hosts.map((h) => h.status)).toEqual(['changed', 'changed', 'changed']);
    // The unit mode is one of the facts each host's plan rests on.
    expect(doc.hosts[0]!.plays[0]!.facts).toContainEqual(
      expect.objectContaining({
        key: 'host:sshd-unit',
        value: kind.kind === 'plain' ? 'none' : 'service ssh',
      }),
    );

    const markdown = await runCli(['show', planFile, '--format', 'markdown']);
    expect(markdown.code).toBe(EXIT.ok);
    // Three hosts with the same change: one section naming all three.
    const sections = markdown.stdout.split('<details>').slice(1);
    expect(sections).toHaveLength(1);
    for (const h of hosts) expect(sections[0]).toContain(`<code>${h.name}</code>`);
    expect(sections[0]).toContain('(3 hosts)');
    expect(sections[0]).toContain(`+sshd: ${lab.workstationAddress}`);

    // After the review, someone edits the first host by hand.
    await hosts[0].exec(`printf '${HAND_EDIT}' >> /etc/hosts.allow`);
    const edited = `${before[0]}${HAND_EDIT}`;
    expect(await hosts[0].readFile('/etc/hosts.allow')).toBe(edited);

    const apply = await runCli(['apply', planFile, ...common]);
    expect(apply.code).toBe(EXIT.stale);
    expect(apply.stdout).toContain(
      `${hosts[0].name} (${hosts[0].address})\n  stale     refused, nothing changed`,
    );
    expect(apply.stdout).toMatch(
      /^ {11}\/etc\/hosts\.allow: sha256:[0-9a-f]{12}… .* → sha256:[0-9a-f]{12}…/m,
    );
    const after = await allowFiles();
    expect(after[0]).toBe(edited);
    for (const i of [1, 2]) {
      expect(after[i]).toContain(`sshd: ${lab.workstationAddress}`);
      expect(after[i]).not.toBe(before[i]);
    }

    // The same plan again: the applied hosts are already as reviewed, the edited one still stale.
    const again = await runCli(['apply', planFile, ...common, '--format', 'json']);
    expect(again.code).toBe(EXIT.stale);
    const report = JSON.parse(again.stdout) as {
      hosts: Record<string, { changed: number; stale?: string[]; tasks: { message: string }[] }>;
    };
    expect(Object.values(report.hosts).map((h) => h.changed)).toEqual([0, 0, 0]);
    expect(report.hosts[hosts[0].name]?.stale).toEqual([expect.stringMatching(/^\/etc\/hosts\.allow: /)]);
    for (const i of [1, 2])
      expect(report.hosts[hosts[i]!.name]?.tasks[0]?.message).toMatch(/^already applied/);
    expect(await allowFiles()).toEqual(after);
  });

  test('a tampered plan, or one older than --max-age, is refused whole: exit 1, no host changed', async () => {
    await runCli(['plan', playbook, '-i', inventory, ...common, '--out', planFile]);
    const files = await allowFiles();
    const text = fs.readFileSync(planFile, 'utf8');
    const tamperedFile = path.join(work, 'tampered.json');
    fs.writeFileSync(tamperedFile, text.replace(`sshd: ${lab.workstationAddress}`, 'sshd: ALL'));
    const tampered = await runCli(['apply', tamperedFile, ...common]);
    expect(tampered.code).toBe(EXIT.failed);
    expect(tampered.stderr).toContain("refused, no host contacted: the plan's digest does not match");
    // Waited out rather than faked: the plan is now older than a one-second maximum age.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const old = await runCli(['apply', planFile, ...common, '--max-age', '1s']);
    expect(old.code).toBe(EXIT.failed);
    expect(old.stderr).toMatch(
      /refused, no host contacted: the plan was made at .* longer ago than --max-age 1s/,
    );
    expect(await allowFiles()).toEqual(files);
  });

  if (kind.kind === 'systemd') {
    test('sshd switched from ssh.service to ssh.socket after the plan: stale, naming the unit', async () => {
      // The first host still has its change pending (it was stale above).
      await runCli(['plan', playbook, '-i', inventory, ...common, '--out', planFile]);
      const files = await allowFiles();
      const switched = await hosts[0].exec(
        'systemctl -q disable --now ssh.service && systemctl -q enable --now ssh.socket',
      );
      expect(switched.code).toBe(0);
      const apply = await runCli(['apply', planFile, ...common, '--limit', hosts[0].name]);
      expect(apply.code).toBe(EXIT.stale);
      expect(apply.stdout).toContain('how sshd runs (systemd unit): service ssh → socket ssh');
      expect(await allowFiles()).toEqual(files);
    });
  }
});
