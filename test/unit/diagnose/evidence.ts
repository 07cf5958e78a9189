/** Builders of evidence for the diagnose unit tests: a healthy baseline that each test breaks one way. */
import type { ProbeEvidence } from '../../../src/diagnose/probe.js';
import type { ServerEvidence } from '../../../src/diagnose/server_checks.js';

export const CLIENT = '10.20.0.5';

export function healthyProbe(overrides: Partial<ProbeEvidence> = {}): ProbeEvidence {
  return {
    target: { host: '10.20.1.1', port: 22 },
    dns: { addresses: ['10.20.1.1'], ms: 0 },
    address: '10.20.1.1',
    tcp: { outcome: 'connected', ms: 1, localAddress: CLIENT },
    banner: { outcome: 'banner', ms: 20, banner: 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3' },
    kex: { outcome: 'ok', ms: 40 },
    auth: { outcome: 'accepted', keysOffered: 1, keysAvailable: 1 },
    burst: { connections: 8, banners: 8, resets: 0, closedBeforeBanner: 0, timeouts: 0, refused: 0, ms: 90 },
    ...overrides,
  };
}

export const STOCK_SSHD_T = new Map<string, string[]>([
  ['port', ['22']],
  ['maxstartups', ['10:30:100']],
  ['maxauthtries', ['6']],
  ['clientaliveinterval', ['0']],
  ['clientalivecountmax', ['3']],
]);

export function healthyServer(overrides: Partial<ServerEvidence> = {}): ServerEvidence {
  return {
    client: CLIENT,
    port: 22,
    sshdPath: '/usr/sbin/sshd',
    sshdRunning: true,
    sshdProcesses: ['  812 sshd: /usr/sbin/sshd [listener] 0 of 10-100 startups'],
    startups: { current: 0, limits: '10-100' },
    listening: ['LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=812,fd=3))'],
    sshdTest: { ok: true, output: '' },
    sshdTestLines: [],
    effective: new Map(STOCK_SSHD_T),
    effectiveError: null,
    libwrap: true,
    hostsAllow: '# /etc/hosts.allow\n',
    hostsDeny: '# /etc/hosts.deny\n# ALL: PARANOID\n',
    iptables: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
    nft: '',
    ufw: 'Status: inactive',
    fail2ban: { running: false, bannedIn: [], raw: '' },
    authLog: [],
    oomKills: [],
    memory: { totalKb: 4_000_000, availableKb: 3_000_000 },
    disks: [{ mount: '/', usePercent: 40 }],
    sshSocketActive: false,
    now: null,
    ...overrides,
  };
}
