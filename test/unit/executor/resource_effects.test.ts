/**
 * The executor knows no resource by name: a resource that writes a file,
 * touches the firewall and guards against lockouts gets the rollback and the
 * guard it declares, without a line of the executor naming it.
 */
import type { FileState, ResourcePlan } from '../../../src/plan/types.js';
import type { ExecResult } from '../../../src/transport/types.js';
import type { HostView, ResourceKind } from '../../../src/resources/types.js';
import {
  buildRestoreScript,
  lockoutGuards,
  newRunId,
  transactionSpecFor,
  type ChangingTask,
} from '../../../src/executor/transaction.js';

interface KnockArgs {
  port: number;
}

interface KnockData {
  port: number;
}

/** A resource no part of sshfix knows: port knocking, one file and one firewall rule. */
const knockResource: ResourceKind<KnockArgs, KnockData> = {
  name: 'knock',
  argsSchema: { type: 'object', required: ['port'], properties: { port: { type: 'integer' } } },
  async plan(args, host) {
    const file = (await host.readFiles(['/etc/knockd.conf'])).get('/etc/knockd.conf')!;
    const after = `port ${args.port}\n`;
    return {
      action: file.content === after ? 'none' : 'change',
      messages: [],
      warnings: [],
      fileChanges: [
        { path: '/etc/knockd.conf', before: file.exists ? file.content : null, beforeSha256: null, after },
      ],
      commands: [
        {
          description: 'open the knock port',
          script: `nft add rule inet filter input tcp dport ${args.port} accept`,
        },
      ],
      effects: { firewall: true },
      data: { port: args.port },
    };
  },
  lockoutGuard(plan, login) {
    // Typed plan data: no cast, no shape check.
    const port: number = plan.data!.port;
    return {
      script: `echo ${port} ${login.user}`,
      judge: (result: ExecResult) => ({
        findings: result.stdout.trim() === `22 ${login.user}` ? ['the knock port is the SSH port'] : [],
      }),
    };
  },
};

/** Reads only: every file absent. */
const emptyHost: HostView = {
  hostName: 'h1',
  readFiles: async (paths) =>
    new Map(paths.map((path): [string, FileState] => [path, { path, exists: false, content: '' }])),
  glob: async () => [],
  globFiles: async () => [],
  probe: async () => ({ exitCode: 0, stdout: '', stderr: '' }),
  sshdRelease: async () => undefined,
};

async function planKnock(port: number): Promise<ChangingTask> {
  const plan: ResourcePlan<KnockData> = await knockResource.plan({ port }, emptyHost, {
    vars: {},
    playbookDir: '/',
  });
  return { kind: knockResource as ResourceKind, plan };
}

describe('a new resource gets the rollback and guard it declares', () => {
  test('its files are backed up and the firewall restored, with fail2ban reloaded after it', async () => {
    const spec = transactionSpecFor([(await planKnock(7000)).plan], {
      runId: newRunId(),
      confirmTimeoutS: 60,
    });
    expect(spec).toMatchObject({
      files: ['/etc/knockd.conf'],
      firewall: true,
      reloadSshd: false,
      reloadFail2ban: true,
    });
    const restore = buildRestoreScript(spec);
    expect(restore).toContain("restore_file 0 '/etc/knockd.conf'");
    expect(restore).toContain('nft -f -');
  });

  test('without the declaration its firewall command gets no firewall rollback', async () => {
    const task = await planKnock(7000);
    const { effects: _declared, ...undeclared } = task.plan;
    const spec = transactionSpecFor([undeclared], { runId: newRunId(), confirmTimeoutS: 60 });
    expect(spec).toMatchObject({ firewall: false, reloadFail2ban: false });
  });

  test('its guard judges the last task of its kind, and none runs on the console', async () => {
    const tasks = [await planKnock(7000), await planKnock(22)];
    const guards = lockoutGuards(tasks, 'admin', 'publickey');
    expect(guards.map((g) => g.index)).toEqual([1]);
    const guard = guards[0]!.guard;
    expect(guard.script).toBe('echo 22 admin');
    expect(guard.judge({ exitCode: 0, stdout: '22 admin\n', stderr: '' }).findings).toEqual([
      'the knock port is the SSH port',
    ]);
    expect(lockoutGuards(tasks, 'root', 'local')).toEqual([]);
  });
});
