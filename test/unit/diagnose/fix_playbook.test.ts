import { parse } from 'yaml';
import { fixPlaybook, tasksFor } from '../../../src/diagnose/fix_playbook.js';
import type { Finding } from '../../../src/diagnose/findings.js';

const finding = (f: Partial<Finding> & Pick<Finding, 'cause'>): Finding => ({
  confidence: 'high',
  score: 90,
  evidence: ['seen'],
  fix: 'do it',
  ...f,
});

describe('fix playbook', () => {
  it('builds one play per host from sshfix resources, access layers first, in YAML without aliases', () => {
    const text = fixPlaybook([
      {
        host: 'web1',
        findings: [
          finding({ cause: 'tcp_wrappers_deny', remedy: { kind: 'tcp_wrappers', client: '10.0.0.5' } }),
          finding({ cause: 'firewall_drop', remedy: { kind: 'firewall', client: '10.0.0.5' } }),
          finding({ cause: 'fail2ban_ban', remedy: { kind: 'fail2ban', client: '10.0.0.5' } }),
          finding({
            cause: 'max_startups',
            remedy: { kind: 'sshd_settings', settings: { MaxStartups: '30:30:100' } },
          }),
        ],
      },
      { host: 'web2', findings: [] },
    ])!;
    expect(text).not.toMatch(/[&*]a\d/);
    const plays = parse(text) as { hosts: string; tasks: Record<string, unknown>[]; handlers?: unknown[] }[];
    expect(plays).toHaveLength(1);
    expect(plays[0]!.hosts).toBe('web1');
    expect(plays[0]!.tasks.map((t) => Object.keys(t).find((k) => k !== 'name' && k !== 'notify'))).toEqual([
      'tcp_wrappers',
      'firewall',
      'fail2ban',
      'sshd_config',
    ]);
    expect(plays[0]!.tasks[0]!.tcp_wrappers).toEqual({
      not_denied: ['10.0.0.5'],
      allow: [{ daemon: 'sshd', clients: ['10.0.0.5'] }],
    });
    expect(plays[0]!.tasks[1]!.firewall).toEqual({ allow_ssh_from: ['10.0.0.5/32'], remove_blocking: true });
    expect(plays[0]!.tasks[2]!.fail2ban).toEqual({ ignoreip: ['10.0.0.5'], unban: ['10.0.0.5'] });
    expect(plays[0]!.handlers).toEqual([
      { name: 'restart sshd', service: { name: 'sshd', state: 'restarted' } },
    ]);
  });

  it('an invalid directive with sshd down: remove the keyword, then start sshd (no restart handler)', () => {
    const tasks = tasksFor([
      { kind: 'sshd_remove', keywords: ['MaxStartupz'], sshdRunning: false },
      { kind: 'sshd_start' },
    ]);
    expect(tasks).toEqual([
      { name: 'sshd limits and directives', sshd_config: { remove: ['MaxStartupz'] } },
      { name: 'sshd is running', service: { name: 'sshd', state: 'started' } },
    ]);
  });

  it('acts on medium and high findings only, unless there is nothing else; writes nothing without a remedy', () => {
    const text = fixPlaybook([
      {
        host: 'h',
        findings: [
          finding({
            cause: 'sshd_not_running',
            confidence: 'medium',
            score: 55,
            remedy: { kind: 'sshd_start' },
          }),
          finding({
            cause: 'fail2ban_ban',
            confidence: 'low',
            score: 30,
            remedy: { kind: 'fail2ban', client: '10.0.0.5' },
          }),
        ],
      },
    ])!;
    expect(text).toContain('state: started');
    expect(text).not.toContain('unban');
    expect(text).toContain('fail2ban_ban (not fixed by this playbook)');
    expect(fixPlaybook([{ host: 'h', findings: [finding({ cause: 'network_unreachable' })] }])).toBeNull();
  });

  it('never writes a play that only starts sshd while its invalid directive stays', () => {
    const findings = [
      finding({
        cause: 'sshd_config_invalid',
        score: 95,
        remedy: { kind: 'sshd_remove', keywords: [], sshdRunning: false },
      }),
      finding({ cause: 'sshd_not_running', score: 70, remedy: { kind: 'sshd_start' } }),
    ];
    const text = fixPlaybook([{ host: 'h', findings }]);
    expect(text ?? '').not.toContain('state: started');
    expect(tasksFor(findings.map((f) => f.remedy!))).toEqual([]);
  });

  it('writes a play for every finding its header does not mark as not fixed', () => {
    const text = fixPlaybook([
      {
        host: 'h',
        findings: [
          finding({
            cause: 'sshd_config_invalid',
            score: 95,
            remedy: { kind: 'sshd_remove', keywords: ['PermitRootLogin'], sshdRunning: false },
          }),
          finding({ cause: 'sshd_not_running', score: 70, remedy: { kind: 'sshd_start' } }),
        ],
      },
    ])!;
    const plays = parse(text) as { tasks: Record<string, unknown>[] }[];
    expect(plays[0]!.tasks).toEqual([
      { name: 'sshd limits and directives', sshd_config: { remove: ['PermitRootLogin'] } },
      { name: 'sshd is running', service: { name: 'sshd', state: 'started' } },
    ]);
    expect(text).not.toContain('not fixed');
  });
});

describe('fix playbook for PerSourcePenalties', () => {
  it('exempts the client (keeping the exempt list found) and restarts sshd, which lifts a live penalty', () => {
    const text = fixPlaybook([
      {
        host: 'web1',
        findings: [
          finding({
            cause: 'source_penalty',
            remedy: { kind: 'source_penalty', client: '10.0.0.5', exempt: ['192.0.2.0/24'] },
          }),
        ],
      },
    ])!;
    const plays = parse(text) as { tasks: Record<string, unknown>[]; handlers?: Record<string, unknown>[] }[];
    expect(plays[0]!.tasks).toEqual([
      {
        name: 'never penalise 10.0.0.5 (PerSourcePenaltyExemptList)',
        sshd_config: { settings: { PerSourcePenaltyExemptList: '192.0.2.0/24,10.0.0.5/32' } },
        notify: 'restart sshd',
      },
    ]);
    expect(plays[0]!.handlers).toEqual([
      { name: 'restart sshd', service: { name: 'sshd', state: 'restarted' } },
    ]);
  });
});
