/** On the console with no client named: what refuses whom. */
import { clientsNamed, OTHER_CLIENT } from '../../../src/diagnose/clients.js';
import { diagnoseHosts } from '../../../src/diagnose/run.js';
import type { Connection, ConnectionSpec } from '../../../src/transport/types.js';
import { healthyServer } from './evidence.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** The server script's output for a host that refuses 10.20.0.5 by hosts.deny and rejects 10.20.0.6 in iptables. */
const OUTPUT = [
  '### sshfix:sshd_path',
  '/usr/sbin/sshd',
  '### sshfix:ps',
  '812 sshd: /usr/sbin/sshd [listener] 0 of 10-100 startups',
  '### sshfix:ss',
  'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=812,fd=3))',
  '### sshfix:sshd_t',
  'rc=0',
  '### sshfix:sshd_T',
  'port 22',
  'maxstartups 10:30:100',
  'maxauthtries 6',
  'rc=0',
  '### sshfix:ldd',
  'libwrap.so.0 => /lib/libwrap.so.0',
  'rc=0',
  '### sshfix:file /etc/hosts.allow',
  b64('# nothing\n'),
  '### sshfix:file /etc/hosts.deny',
  b64('sshd: 10.20.0.5\n'),
  '### sshfix:iptables',
  '*filter',
  ':INPUT ACCEPT [0:0]',
  '-A INPUT -s 10.20.0.6/32 -p tcp -m tcp --dport 22 -j REJECT --reject-with icmp-port-unreachable',
  'COMMIT',
  '### sshfix:fail2ban',
  '### sshfix:authlog',
  'refused connect from 10.20.0.5 (10.20.0.5)',
  '### sshfix:end',
  '',
].join('\n');

describe('clientsNamed', () => {
  it('takes every literal client address of hosts files, iptables sources, bans and sshd’s refusals', () => {
    const server = healthyServer({
      hostsDeny: '# sshd: 10.9.9.9\nsshd: 10.20.0.5, 10.30.0.0/16\n',
      hostsAllow: 'sshd: 10.20.0.7/32\n',
      iptables: '*filter\n-A INPUT -s 10.20.0.6/32,10.40.0.0/8 -d 10.20.1.1/32 -j DROP\nCOMMIT\n',
      fail2ban: { running: true, bannedIn: [], raw: "[{'sshd': ['10.20.0.8', 'fd00::8']}]" },
      authLog: [
        'drop connection #0 from [10.20.0.9]:5 on [10.20.1.1]:22 past MaxStartups',
        'Disconnecting authenticating user root 10.20.0.10 port 7: Too many authentication failures [preauth]',
        `refused connect from ${OTHER_CLIENT} (${OTHER_CLIENT})`,
      ],
    });
    expect(clientsNamed(server)).toEqual({
      clients: ['10.20.0.5', '10.20.0.7', '10.20.0.6', '10.20.0.8', 'fd00::8', '10.20.0.9', '10.20.0.10'],
      more: 0,
    });
  });
});

describe('diagnose -c local with no client', () => {
  it('says which layer refuses which client, and what refuses any other client', async () => {
    const scripts: string[] = [];
    const conn: Connection = {
      hostName: 'web1',
      runScript: async (script) => {
        scripts.push(script);
        return { stdout: OUTPUT, stderr: '', exitCode: 0 };
      },
      close: async () => undefined,
    };
    const spec: ConnectionSpec = {
      hostName: 'web1',
      connection: 'local',
      address: 'localhost',
      port: 22,
      user: 'root',
      become: false,
      knownHostsFile: '/dev/null',
      acceptNewHostKeys: false,
      connectTimeoutMs: 1000,
      commandTimeoutMs: 1000,
      keepaliveIntervalMs: 1000,
    };
    const [d] = await diagnoseHosts([{ name: 'web1', spec }], {
      offerKeys: [],
      burstConnections: 0,
      probeOnly: false,
      concurrency: 1,
      connect: async () => conn,
    });
    expect(d?.client).toBeNull();
    expect(d?.serverChecks).toEqual({ via: 'local' });
    const sure = d!.findings
      .filter((f) => f.confidence !== 'low')
      .map((f) => ({ cause: f.cause, client: f.client }));
    expect(sure).toEqual(
      expect.arrayContaining([
        { cause: 'tcp_wrappers_deny', client: '10.20.0.5' },
        { cause: 'firewall_reject', client: '10.20.0.6' },
      ]),
    );
    expect(sure).toHaveLength(2);
    expect(d!.findings.find((f) => f.client === '10.20.0.6')?.remedy).toEqual({
      kind: 'firewall',
      client: '10.20.0.6',
    });
    // One round trip for any other client, one for each client named.
    expect(scripts.map((s) => /^client='([^']+)'/m.exec(s)?.[1])).toEqual([
      OTHER_CLIENT,
      '10.20.0.5',
      '10.20.0.6',
    ]);
  });
});
