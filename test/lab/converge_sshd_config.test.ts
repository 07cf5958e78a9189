/**
 * The walking skeleton against real OpenSSH servers: one playbook converges
 * five hosts whose sshd_config is broken in five different ways, reloads sshd
 * once where something changed, and changes nothing the second time. On both
 * kinds of lab host: plain (OpenSSH 9.2, no init) and systemd (OpenSSH 10,
 * ssh.service reloaded through systemctl).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  PLAIN,
  startLab,
  SYSTEMD_SERVICE,
  type Lab,
  type LabHost,
} from './lab.js';
import { runCli } from '../support/cli.js';

const DESIRED: Record<string, string> = {
  maxstartups: '30:30:100',
  maxsessions: '12',
  maxauthtries: '4',
  clientaliveinterval: '300',
  clientalivecountmax: '3',
  logingracetime: '45',
};

const PLAYBOOK = `
- name: connection limits
  hosts: all
  vars:
    max_startups: "30:30:100"
  tasks:
    - name: sshd limits
      sshd_config:
        settings:
          MaxStartups: "{{ max_startups }}"
          MaxSessions: 12
          MaxAuthTries: 4
          ClientAliveInterval: 5m
          ClientAliveCountMax: 3
          LoginGraceTime: 45
      notify: reload sshd
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
`;

/** Each host starts broken in its own way (the five cases of the issue). */
const BREAKAGES: Record<number, { what: string; script: string }> = {
  0: {
    what: 'directives absent (no commented defaults either)',
    script: `sed -i -E '/^#?(MaxStartups|MaxSessions|MaxAuthTries|ClientAlive|LoginGraceTime)/d' /etc/ssh/sshd_config`,
  },
  1: { what: 'directives commented out (stock Debian file)', script: 'true' },
  2: {
    what: 'duplicated with a different first value',
    script: `sed -i '/^Include/a MaxStartups 5:10:20\\nMaxAuthTries 2' /etc/ssh/sshd_config && printf 'MaxStartups 30:30:100\\nMaxAuthTries 4\\n' >> /etc/ssh/sshd_config`,
  },
  3: {
    what: 'set in a drop-in under sshd_config.d',
    script: `printf '# written by cloud-init\\nMaxAuthTries 2\\nClientAliveInterval 10\\nMaxStartups 2:50:5\\n' > /etc/ssh/sshd_config.d/50-cloud-init.conf`,
  },
  4: {
    what: 'present only after a trailing Match block',
    script: `printf 'Match User nobody\\n    X11Forwarding no\\nMaxSessions 2\\nMaxAuthTries 2\\nClientAliveCountMax 1\\n' >> /etc/ssh/sshd_config`,
  },
};

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

async function configFiles(host: LabHost): Promise<Map<string, string>> {
  const list = await host.exec('ls /etc/ssh/sshd_config /etc/ssh/sshd_config.d/* 2>/dev/null');
  const files = new Map<string, string>();
  for (const f of list.stdout.trim().split('\n').filter(Boolean)) files.set(f, await host.readFile(f));
  return files;
}

/**
 * How often sshd logged a reload. The journal of a systemd host stores
 * messages a moment after sshd sends them: with `atLeast`, waits (bounded)
 * for that many before counting.
 */
async function reloads(host: LabHost, atLeast = 0): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const count = ((await host.sshdLog()).match(/Received SIGHUP; restarting/g) ?? []).length;
    if (count >= atLeast || Date.now() > deadline) return count;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describeLabKinds('sshd_config converges on real OpenSSH servers', [PLAIN, SYSTEMD_SERVICE], (kind) => {
  let lab: Lab;
  let work: string;
  let inventory: string;
  let playbook: string;
  let common: string[];

  beforeAll(async () => {
    lab = await startLab({ id: kind.kind === 'plain' ? 'conv' : 'convsd', hosts: 7, ...kind });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-conv-'));
    for (const [i, b] of Object.entries(BREAKAGES)) {
      const host = lab.hosts[Number(i)]!;
      const r = await host.exec(b.script);
      if (r.code !== 0) throw new Error(`breaking ${host.name} (${b.what}): ${r.stderr}`);
      await host.stopSshd();
      await host.startSshd();
    }
    inventory = path.join(work, 'inventory.yml');
    const hostLines = lab.hosts
      .slice(0, 5)
      .map((h) => `        ${h.name}: { ansible_host: ${h.address}, ansible_user: root }`)
      .join('\n');
    fs.writeFileSync(
      inventory,
      `all:\n  children:\n    fleet:\n      hosts:\n${hostLines}\n  vars:\n    ansible_ssh_private_key_file: ${lab.privateKeyFile}\n`,
    );
    playbook = path.join(work, 'limits.yml');
    fs.writeFileSync(playbook, PLAYBOOK);
    common = ['-i', inventory, '--known-hosts', lab.knownHostsFile];
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('plan, apply, then nothing left to do', async () => {
    const fleet = lab.hosts.slice(0, 5);
    const before = await Promise.all(fleet.map(configFiles));
    const pidsBefore = await Promise.all(fleet.map((h) => h.sshdPid()));
    const reloadsBefore = await Promise.all(fleet.map(reloads));

    const plan = await runCli(['plan', playbook, ...common, '--detailed-exitcode']);
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain(
      'MaxStartups 2:50:5 from /etc/ssh/sshd_config.d/50-cloud-init.conf:4 → 30:30:100',
    );
    // A plan changes nothing.
    expect(await Promise.all(fleet.map(configFiles))).toEqual(before);

    const apply = await runCli(['apply', playbook, ...common, '--format', 'json']);
    expect(apply.stderr).toBe('');
    expect(apply.code).toBe(0);
    const report = JSON.parse(apply.stdout) as {
      hosts: Record<string, { changed: number; failed: number; unreachable: boolean }>;
    };
    for (const h of fleet) expect(report.hosts[h.name]).toMatchObject({ failed: 0, unreachable: false });

    for (const [i, host] of fleet.entries()) {
      // The effect, not the text: sshd's own view of its configuration.
      const effective = await sshdT(host);
      for (const [k, v] of Object.entries(DESIRED))
        expect(`${host.name} ${k} ${effective.get(k)}`).toBe(`${host.name} ${k} ${v}`);
      // Reloaded exactly once, by sshd's own log; same master pid (SIGHUP re-exec).
      expect(await reloads(host, reloadsBefore[i]! + 1)).toBe(reloadsBefore[i]! + 1);
      expect(await host.sshdPid()).toBe(pidsBefore[i]);
      // Untouched lines stay byte-identical: every old line is still there, in order, or was one of ours.
      const after = await configFiles(host);
      for (const [file, oldText] of before[i]!) {
        const newLines = after.get(file)!.split('\n');
        const ours =
          /^\s*#?\s*(MaxStartups|MaxSessions|MaxAuthTries|ClientAlive\w+|LoginGraceTime)\b|^# sshfix/i;
        const kept = oldText.split('\n').filter((l) => !ours.test(l));
        expect(newLines.filter((l) => !ours.test(l))).toEqual(kept);
      }
    }
    // The Match block's own value still applies to its user only.
    const matchHost = fleet[4]!;
    const forNobody = await matchHost.exec(
      '/usr/sbin/sshd -T -C user=nobody,host=x,addr=10.0.0.1 | grep -i ^maxsessions',
    );
    expect(forNobody.stdout.trim()).toBe('maxsessions 2');
    // Every host still takes new connections.
    for (const h of fleet) expect((await lab.ssh(h, 'true')).code).toBe(0);

    const second = await runCli(['apply', playbook, ...common, '--format', 'json']);
    const secondReport = JSON.parse(second.stdout) as { hosts: Record<string, { changed: number }> };
    expect(second.code).toBe(0);
    for (const h of fleet) expect(secondReport.hosts[h.name]?.changed).toBe(0);
    expect(await Promise.all(fleet.map(reloads))).toEqual(reloadsBefore.map((n) => n + 1));

    const planAgain = await runCli(['plan', playbook, ...common, '--detailed-exitcode']);
    expect(planAgain.code).toBe(0);
  });

  test('an invalid value fails before any file changes', async () => {
    const host = lab.hosts[5]!;
    const bad = path.join(work, 'bad.yml');
    // A value only sshd can judge: RekeyLimit takes sizes such as 1G.
    fs.writeFileSync(bad, PLAYBOOK.replace('MaxSessions: 12', 'MaxSessions: 12\n          RekeyLimit: lots'));
    const before = await configFiles(host);
    const pid = await host.sshdPid();
    const reloadsBefore = await reloads(host);
    const inv = path.join(work, 'one.ini');
    fs.writeFileSync(
      inv,
      `${host.name} ansible_host=${host.address} ansible_user=root ansible_ssh_private_key_file=${lab.privateKeyFile}\n`,
    );
    const run = await runCli(['apply', bad, '-i', inv, '--known-hosts', lab.knownHostsFile]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/sshd -t rejected the new configuration: .*Bad RekeyLimit number 'lots'/);
    expect(await configFiles(host)).toEqual(before);
    expect(await host.sshdPid()).toBe(pid);
    expect(await reloads(host)).toBe(reloadsBefore);
  });

  test('a changed host key is refused, an unreachable host is reported, the others complete', async () => {
    const [changedKey, good] = [lab.hosts[5]!, lab.hosts[6]!];
    const known = path.join(work, 'known_hosts');
    // known_hosts claims another host's key for changedKey's address.
    fs.writeFileSync(
      known,
      `${changedKey.address} ${lab.hosts[0]!.hostKeyLine}\n${good.address} ${good.hostKeyLine}\n10.255.255.1 ${good.hostKeyLine}\n`,
    );
    const inv = path.join(work, 'mixed.yml');
    fs.writeFileSync(
      inv,
      [
        'all:',
        '  vars:',
        `    ansible_user: root`,
        `    ansible_ssh_private_key_file: ${lab.privateKeyFile}`,
        '  hosts:',
        `    changedkey: { ansible_host: ${changedKey.address} }`,
        `    good: { ansible_host: ${good.address} }`,
        // An address on the lab bridge that no host holds: nobody answers.
        `    gone: { ansible_host: ${lab.controllerAddress.replace(/\.\d+\.\d+$/, '.250.250')} }`,
        '',
      ].join('\n'),
    );
    const before = await configFiles(changedKey);
    const run = await runCli([
      'apply',
      playbook,
      '-i',
      inv,
      '--known-hosts',
      known,
      '--connect-timeout',
      '3',
      '--format',
      'json',
    ]);
    const report = JSON.parse(run.stdout) as {
      hosts: Record<string, { changed: number; failed: number; unreachable: boolean; error?: string }>;
    };
    expect(run.code).toBe(4);
    expect(report.hosts.changedkey).toMatchObject({ unreachable: true });
    expect(report.hosts.changedkey?.error).toMatch(/does not match known_hosts/);
    expect(report.hosts.gone).toMatchObject({ unreachable: true });
    expect(report.hosts.good).toMatchObject({ unreachable: false, failed: 0 });
    expect(report.hosts.good!.changed).toBeGreaterThan(0);
    expect(await configFiles(changedKey)).toEqual(before);
  });
});
