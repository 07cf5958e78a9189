/**
 * The tcp_wrappers resource through the executor on this machine's real shell
 * (temp files, no SSH): one round trip to plan, messages with verdicts before
 * and after, apply + verify, idempotence, and argument checks.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tcpWrappersResource, type TcpWrappersArgs } from '../../../src/resources/tcp_wrappers.js';
import { runPlayOnHost, type BoundPlay } from '../../../src/executor/host_run.js';
import { runChecks } from '../../../src/executor/host_batch.js';
import { RemoteHostView } from '../../../src/executor/host_view.js';
import type { TaskResult } from '../../../src/executor/results.js';
import { localShell } from '../../support/local_sh.js';

let dir: string;
let allowFile: string;
let denyFile: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-tcpw-'));
  allowFile = path.join(dir, 'hosts.allow');
  denyFile = path.join(dir, 'hosts.deny');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const withFiles = (args: TcpWrappersArgs): TcpWrappersArgs => ({
  ...args,
  allow_file: allowFile,
  deny_file: denyFile,
});

function playOf(args: TcpWrappersArgs): BoundPlay {
  return {
    name: 'wrappers',
    playbookDir: dir,
    vars: {},
    tasks: [{ play: 'wrappers', name: 'tcp wrappers', resource: tcpWrappersResource, args, notify: [] }],
    handlers: [],
  };
}

async function apply(args: TcpWrappersArgs): Promise<TaskResult> {
  const [result] = await runPlayOnHost(localShell(), playOf(withFiles(args)), { check: false });
  return result!;
}

const DENY = `# /etc/hosts.deny: list of hosts that are _not_ allowed to access the system.
#
vsftpd: ALL
in.telnetd,\\
  in.ftpd: 10.20.0.5
sshd: 10.20.0.5 192.0.2.99
`;

describe('tcp_wrappers plan', () => {
  it('reads both files and probes libwrap in one round trip, and explains the verdicts', async () => {
    fs.writeFileSync(denyFile, DENY);
    const view = new RemoteHostView(localShell());
    const plan = await tcpWrappersResource.plan(withFiles({ not_denied: ['10.20.0.5'] }), view, {
      vars: {},
      playbookDir: dir,
    });
    expect(view.roundTrips).toBe(1);
    expect(plan.action).toBe('change');
    expect(plan.messages).toEqual([
      `${denyFile}:6: removed 10.20.0.5 from "sshd: 10.20.0.5 192.0.2.99"`,
      `10.20.0.5 (sshd) is refused by ${denyFile}:6 (sshd: 10.20.0.5 192.0.2.99) → granted (no rule in ${allowFile} or ${denyFile} matches)`,
    ]);
    expect(plan.fileChanges).toHaveLength(1);
    expect(plan.fileChanges[0]).toMatchObject({
      path: denyFile,
      before: DENY,
      after: DENY.replace('10.20.0.5 192', '192'),
    });
  });

  it('warns when sshd is not linked with libwrap (probe answer), and still plans the edit', async () => {
    fs.writeFileSync(denyFile, 'sshd: ALL\n');
    const conn = localShell();
    const view = new RemoteHostView({
      ...conn,
      // The probe's answer as a host without libwrap gives it; the file reads are real.
      runScript: async (script: string) => {
        const result = await conn.runScript(script);
        return {
          ...result,
          stdout: result.stdout.replace(/^linked (\S+)$/m, 'not-linked $1'),
        };
      },
    });
    const plan = await tcpWrappersResource.plan(withFiles({ not_denied: ['10.20.0.5'] }), view, {
      vars: {},
      playbookDir: dir,
    });
    expect(plan.action).toBe('change');
    expect(plan.warnings).toContain(
      'sshd is not linked with libwrap: /etc/hosts.{allow,deny} have no effect on sshd on this host',
    );
  });
});

describe('tcp_wrappers apply', () => {
  it('edits narrowly, verifies, and changes nothing the second time', async () => {
    fs.writeFileSync(denyFile, DENY);
    fs.writeFileSync(allowFile, '# hosts.allow\nsshd: ALL : DENY\n');
    const args: TcpWrappersArgs = {
      allow: [{ daemon: 'sshd', clients: ['10.30.0.0/16', '192.0.2.7'] }],
      not_denied: ['10.20.0.5'],
    };
    const first = await apply(args);
    expect(first.error).toBeUndefined();
    expect(first.status).toBe('changed');
    expect(fs.readFileSync(allowFile, 'utf8')).toBe(
      '# hosts.allow\nsshd: 10.30.0.0/255.255.0.0 192.0.2.7\nsshd: ALL EXCEPT 10.20.0.5 : DENY\n',
    );
    expect(fs.readFileSync(denyFile, 'utf8')).toBe(DENY.replace('10.20.0.5 192', '192'));
    const second = await apply(args);
    expect(second.status).toBe('ok');
    expect(second.diff).toBe('');
  });

  it('creates a missing hosts.allow only when it has something to put in it', async () => {
    expect((await apply({ not_denied: ['10.20.0.5'] })).status).toBe('ok');
    expect(fs.existsSync(allowFile)).toBe(false);
    expect(fs.existsSync(denyFile)).toBe(false);
    expect((await apply({ allow: [{ clients: ['10.20.0.5'] }] })).status).toBe('changed');
    expect(fs.readFileSync(allowFile, 'utf8')).toBe('sshd: 10.20.0.5\n');
  });

  it('fails verification when the files changed under it into something that refuses', async () => {
    fs.writeFileSync(denyFile, 'sshd: ALL\n');
    const plan = await tcpWrappersResource.plan(
      withFiles({ not_denied: ['10.20.0.5'] }),
      new RemoteHostView(localShell()),
      { vars: {}, playbookDir: dir },
    );
    // Someone else's rule lands after our edit: verify must notice.
    fs.writeFileSync(allowFile, 'sshd: 10.20.0.5 : DENY\n');
    const failures = await runChecks(localShell(), tcpWrappersResource.verify!(plan));
    expect(failures).toEqual([expect.stringMatching(/10\.20\.0\.5 \(sshd\) is refused by .*hosts\.allow:1/)]);
  });
});

describe('tcp_wrappers checkArgs', () => {
  it.each([
    [{ not_denied: ['10.20.0.5/16'] }, '/not_denied/0', /host bits/],
    [{ not_denied: ['ALL'] }, '/not_denied/0', /not an IPv4/],
    [{ allow: [{ clients: ['10.0.0.1', '10.0.0.1\nALL'] }] }, '/allow/0/clients/1', /control character/],
    [
      { allow: [{ daemon: 'sshd: ALL', clients: ['10.0.0.1'] }] },
      '/allow/0/daemon',
      /not a plain process name/,
    ],
    [{ daemon: 'ALL', not_denied: ['10.0.0.1'] }, '/daemon', /not a plain process name/],
    [{ not_denied: ['10.0.0.1'], allow_file: '/etc/x', deny_file: '/etc/x' }, '/deny_file', /different/],
  ])('%j → %s', (args, pointer, message) => {
    const problems = tcpWrappersResource.checkArgs!(args as TcpWrappersArgs);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.pointer).toBe(pointer);
    expect(problems[0]?.message).toMatch(message);
  });

  it('accepts addresses, networks and IPv6', () => {
    expect(
      tcpWrappersResource.checkArgs!({
        allow: [{ daemon: 'sshd', clients: ['10.20.0.0/16', '192.0.2.7', '2001:db8::/32'] }],
        not_denied: ['10.20.0.5'],
      }),
    ).toEqual([]);
  });
});
