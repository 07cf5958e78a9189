/**
 * `sshfix demo`: a throw-away lab of real OpenSSH servers on this machine
 * (network namespaces), each broken differently, converged by a shipped
 * playbook while you watch — then torn down. Needs Linux and root.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { labAvailability, startLab, type Lab, type LabHost } from '../lab/lab.js';

export interface DemoIO {
  stdout(text: string): void;
  stderr(text: string): void;
  isTTY: boolean;
}

/** Runs the CLI itself for each step, so the demo shows exactly what a user would see. */
export type CliRunner = (argv: string[]) => Promise<number>;

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Breakage {
  title: string;
  script: string;
}

/** Each host gets one of the ways real fleets end up with sshd limits that cut connections. */
const BREAKAGES: Breakage[] = [
  {
    title:
      'a cloud-init drop-in throttles new connections (MaxStartups 2:50:5) and allows one key (MaxAuthTries 1)',
    script:
      "printf '# written by cloud-init\\nMaxStartups 2:50:5\\nMaxAuthTries 1\\n' > /etc/ssh/sshd_config.d/50-cloud-init.conf",
  },
  {
    title: 'an early duplicate wins over the value appended at the end (first value wins)',
    script:
      "sed -i '/^Include/a MaxStartups 3:50:6\\nClientAliveInterval 5' /etc/ssh/sshd_config && printf 'MaxStartups 30:30:100\\n' >> /etc/ssh/sshd_config",
  },
  {
    title: 'settings appended after a trailing Match block apply only to that Match',
    script:
      "printf 'Match User backup\\n    X11Forwarding no\\nMaxAuthTries 1\\nClientAliveCountMax 0\\n' >> /etc/ssh/sshd_config",
  },
];

const EFFECTIVE =
  'maxstartups|maxauthtries|maxsessions|clientaliveinterval|clientalivecountmax|logingracetime';

async function effectiveSettings(host: LabHost): Promise<string> {
  const result = await host.exec(`/usr/sbin/sshd -T | grep -E '^(${EFFECTIVE}) ' | sort | tr '\\n' ' '`);
  return result.stdout.trim();
}

export async function runDemo(
  options: { hosts: number; keep: boolean },
  io: DemoIO,
  cli: CliRunner,
): Promise<number> {
  const availability = labAvailability();
  if (!availability.ok) {
    io.stderr(
      `sshfix demo builds a lab of real sshd hosts in network namespaces and cannot run here: ${availability.reason}.\n` +
        'It needs Linux, root, iproute2 (ip netns), overlayfs and openssh-server (apt-get install openssh-server iproute2).\n',
    );
    return 1;
  }
  const step = (text: string) => io.stdout(io.isTTY ? `\n\x1b[1m==> ${text}\x1b[0m\n` : `\n==> ${text}\n`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-demo-'));
  let lab: Lab | undefined;
  try {
    step(`Starting a lab of ${options.hosts} OpenSSH servers in network namespaces`);
    lab = await startLab({ id: 'demo', hosts: options.hosts });
    for (const [i, host] of lab.hosts.entries()) {
      const breakage = BREAKAGES[i % BREAKAGES.length]!;
      const result = await host.exec(breakage.script);
      if (result.code !== 0) throw new Error(`breaking ${host.name}: ${result.stderr}`);
      await host.stopSshd();
      await host.startSshd();
      io.stdout(`  ${host.name} (${host.address}): ${breakage.title}\n`);
      io.stdout(`      sshd -T: ${await effectiveSettings(host)}\n`);
    }
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
    const playbook = path.join(PACKAGE_ROOT, 'playbooks', 'sshd-limits.yml');
    const common = ['-i', inventory, '--known-hosts', lab.knownHostsFile];

    step(`sshfix plan playbooks/sshd-limits.yml  (a dry run: diffs, nothing changes)`);
    await cli(['plan', playbook, ...common]);
    step(
      'sshfix apply playbooks/sshd-limits.yml  (validate the whole tree with sshd -t, write, reload once)',
    );
    const applied = await cli(['apply', playbook, ...common]);
    step('What sshd itself now uses (sshd -T)');
    for (const host of lab.hosts) io.stdout(`  ${host.name}: ${await effectiveSettings(host)}\n`);
    step('sshfix apply again: nothing left to change');
    const again = await cli(['apply', playbook, ...common]);
    step('A new SSH connection to every host');
    for (const host of lab.hosts) {
      const probe = await lab.ssh(host, 'hostname');
      io.stdout(`  ${host.name}: ${probe.code === 0 ? 'ok' : `FAILED: ${probe.stderr.trim()}`}\n`);
    }
    return applied === 0 && again === 0 ? 0 : 1;
  } finally {
    if (lab && !options.keep) {
      step('Tearing the lab down');
      await lab.destroy();
    } else if (lab) {
      io.stdout(`\nLab kept (--keep): inventory ${path.join(work, 'inventory.yml')}\n`);
    }
    if (!options.keep) fs.rmSync(work, { recursive: true, force: true });
  }
}
