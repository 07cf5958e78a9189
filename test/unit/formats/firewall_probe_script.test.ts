/**
 * The firewall probe script run by a real `sh` against stand-in programs
 * that log each start: on a fleet every program it starts is paid once per
 * host, so which ones start is part of its contract, and so are the facts
 * parsed from what they print.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { firewallProbeScript, parseFirewallProbe } from '../../../src/formats/firewall_probe.js';
import { SHARED_UNITS } from '../../../src/formats/systemd_units.js';
import { showLines } from '../../support/systemctl_standin.js';

const DROP_WS = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.200.0.2/32 -p tcp -j DROP\nCOMMIT\n';
const V6_FILTER = '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n';

interface Host {
  /** Programs on PATH and what each prints; `null` content makes a program that fails. */
  programs: Record<string, string | null>;
  /** PATH name -> program it is a symbolic link to (alternatives). */
  links?: Record<string, string>;
  /** systemd is PID 1 (/run/systemd/system exists); not unless given, whatever this machine runs. */
  systemd?: boolean;
}

let dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  dirs = [];
});

/** Runs the probe on `host`; returns its output and the programs it started, in order. */
function probe(host: Host): { stdout: string; started: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-fwprobe-'));
  dirs.push(dir);
  const log = path.join(dir, 'started.log');
  for (const [name, output] of Object.entries(host.programs)) {
    const body = output === null ? 'exit 1' : `cat <<'SSHFIX_EOF'\n${output.replace(/\n$/, '')}\nSSHFIX_EOF`;
    // $0 is the name it was started by, as for a multi-call program reached through a link.
    fs.writeFileSync(path.join(dir, name), `#!/bin/sh\necho "\${0##*/} $*" >> '${log}'\n${body}\n`, {
      mode: 0o755,
    });
  }
  for (const [name, target] of Object.entries(host.links ?? {})) {
    fs.symlinkSync(path.join(dir, target), path.join(dir, name));
  }
  // The script adds the system's sbin directories to PATH; here only the stand-ins may answer.
  const script = firewallProbeScript()
    .replace('PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"', ':')
    .replaceAll('[ -d /run/systemd/system ]', host.systemd === true ? 'true' : 'false');
  expect(script).not.toContain('PATH=');
  const result = spawnSync('/bin/sh', ['-c', script], {
    encoding: 'utf8',
    env: { PATH: `${dir}:/usr/bin:/bin` },
  });
  expect(result.status).toBe(0);
  const started = fs.existsSync(log)
    ? fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .map((l) => l.trimEnd())
        .filter((l) => l !== '')
    : [];
  return { stdout: result.stdout, started };
}

const debianNft = (nftListing: string, extra: Record<string, string | null> = {}): Host => ({
  programs: {
    'xtables-nft-multi': '',
    'xtables-legacy-multi': '',
    'iptables-nft-save': DROP_WS,
    'ip6tables-nft-save': V6_FILTER,
    'iptables-legacy-save': '',
    'ip6tables-legacy-save': '',
    'iptables-save': DROP_WS,
    'ip6tables-save': V6_FILTER,
    nft: nftListing,
    ...extra,
  },
  links: { iptables: 'xtables-nft-multi' },
});

describe('firewall probe script, run by sh', () => {
  test('Debian with iptables-nft: nft lists only an ip table, so only iptables-nft-save starts after it', () => {
    const { stdout, started } = probe(debianNft('table ip filter { # handle 1\n}\n'));
    expect(started).toEqual(['nft -a list ruleset', 'iptables-nft-save']);
    const facts = parseFirewallProbe(stdout, { ports: [22] });
    expect(facts.iptablesDefault).toBe('nft');
    expect(facts.iptables).toEqual({ legacy: { v4: '', v6: '' }, nft: { v4: DROP_WS, v6: '' } });
    expect(facts.nftListing).toBe('table ip filter { # handle 1\n}\n');
  });

  test('an ip6 table in the listing starts ip6tables-nft-save too; an empty listing starts neither', () => {
    const both = probe(debianNft('table ip filter {\n}\ntable ip6 filter {\n}\n'));
    expect(both.started).toEqual(['nft -a list ruleset', 'iptables-nft-save', 'ip6tables-nft-save']);
    expect(parseFirewallProbe(both.stdout, { ports: [22] }).iptables.nft).toEqual({
      v4: DROP_WS,
      v6: V6_FILTER,
    });
    const empty = probe(debianNft(''));
    expect(empty.started).toEqual(['nft -a list ruleset']);
    const facts = parseFirewallProbe(empty.stdout, { ports: [22] });
    expect(facts.iptables.nft).toEqual({ v4: '', v6: '' });
    expect(facts.nftListing).toBe('\n');
  });

  test('an inet table alone is not an iptables-nft table', () => {
    const { started } = probe(debianNft('table inet f2b-table {\n}\n'));
    expect(started).toEqual(['nft -a list ruleset']);
  });

  test('without nft, or when nft fails, both iptables-nft-save programs start', () => {
    const withoutNft = debianNft('');
    delete withoutNft.programs.nft;
    expect(probe(withoutNft).started).toEqual(['iptables-nft-save', 'ip6tables-nft-save']);
    const failing = probe(debianNft('', { nft: null }));
    expect(failing.started).toEqual(['nft -a list ruleset', 'iptables-nft-save', 'ip6tables-nft-save']);
    expect(parseFirewallProbe(failing.stdout, { ports: [22] }).iptables.nft).toEqual({
      v4: DROP_WS,
      v6: V6_FILTER,
    });
  });

  test('iptables pointing at the legacy multi-call program is legacy, still without starting it', () => {
    const host = debianNft('');
    host.links = { iptables: 'xtables-legacy-multi' };
    const { stdout, started } = probe(host);
    expect(started.some((s) => s.startsWith('iptables ') || s.startsWith('xtables'))).toBe(false);
    expect(parseFirewallProbe(stdout, { ports: [22] }).iptablesDefault).toBe('legacy');
  });

  test('an iptables without variants is asked its version, and plain iptables-save is read', () => {
    const { stdout, started } = probe({
      programs: { iptables: 'iptables v1.6.1\n', 'iptables-save': DROP_WS, 'ip6tables-save': V6_FILTER },
    });
    expect(started).toEqual(['iptables -V', 'iptables-save', 'ip6tables-save']);
    const facts = parseFirewallProbe(stdout, { ports: [22] });
    expect(facts.iptablesDefault).toBe('legacy');
    expect(facts.iptables).toEqual({ plain: { v4: DROP_WS, v6: V6_FILTER } });
    expect(facts.nftListing).toBeNull();
  });
});

describe('firewall probe script: is firewalld running?', () => {
  const zones = 'public (default)\n  target: default\n  rich rules: \n';
  /** systemctl show's answer over SHARED_UNITS, with firewalld.service in `state`. */
  const shown = (state: string): string =>
    SHARED_UNITS.map((unit) =>
      showLines(
        unit,
        unit === 'firewalld.service' ? { LoadState: 'loaded', ActiveState: state } : undefined,
      ).join('\n'),
    ).join('\n\n');
  const SHOW = `systemctl show -p LoadState,ActiveState,CanReload,Accept,FragmentPath,DropInPaths ${SHARED_UNITS.join(' ')}`;
  const firewalldHost = (systemctl: string | null, systemd = true): Host => ({
    programs: { 'firewall-cmd': zones, systemctl },
    systemd,
  });

  test('under systemd (firewalld.service runs it with --nopid: no pid file) the unit says so, then firewall-cmd is asked', () => {
    const { stdout, started } = probe(firewalldHost(shown('active')));
    expect(started).toEqual([
      SHOW,
      'firewall-cmd --get-default-zone',
      'firewall-cmd --list-all-zones',
      'firewall-cmd --permanent --list-all-zones',
    ]);
    const facts = parseFirewallProbe(stdout, { ports: [22] });
    expect(facts.firewalldInstalled).toBe(true);
    expect(facts.firewalld).toEqual({ defaultZone: zones.trimEnd(), runtime: zones, permanent: zones });
  });

  test('installed but its unit inactive, or systemctl failing: firewall-cmd (Python) never starts', () => {
    for (const systemctl of [shown('inactive'), shown('failed'), null]) {
      const { stdout, started } = probe(firewalldHost(systemctl));
      expect(started).toEqual([SHOW]);
      const facts = parseFirewallProbe(stdout, { ports: [22] });
      expect(facts.firewalldInstalled).toBe(true);
      expect(facts.firewalld).toBeNull();
    }
  });

  test('reloading counts as running, as for systemctl is-active', () => {
    expect(probe(firewalldHost(shown('reloading'))).started).toContain('firewall-cmd --get-default-zone');
  });

  test('without systemd, systemctl (which could only fail) never starts', () => {
    const { stdout, started } = probe(firewalldHost('', false));
    expect(started).toEqual([]);
    expect(parseFirewallProbe(stdout, { ports: [22] }).firewalld).toBeNull();
  });
});
