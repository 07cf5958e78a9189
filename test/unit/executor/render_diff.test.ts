import { renderDiff } from '../../../src/executor/host_run.js';
import type { ResourcePlan } from '../../../src/plan/types.js';

const plan = (extra: Partial<ResourcePlan>): ResourcePlan => ({
  action: 'change',
  messages: [],
  warnings: [],
  fileChanges: [],
  commands: [],
  ...extra,
});

describe('renderDiff', () => {
  test('file changes and state changes become unified diffs; unchanged state is left out', () => {
    const text = renderDiff(
      plan({
        fileChanges: [{ path: '/etc/hosts.deny', before: 'sshd: 10.0.0.5\n', beforeSha256: 'x', after: '' }],
        stateDiffs: [
          { label: 'iptables INPUT (IPv4)', before: '-A INPUT -s 10.0.0.5/32 -j DROP\n', after: '' },
          { label: 'nft ruleset', before: 'same\n', after: 'same\n' },
        ],
      }),
    );
    expect(text).toBe(
      [
        '--- /etc/hosts.deny\tcurrent',
        '+++ /etc/hosts.deny\tplanned',
        '@@ -1,1 +0,0 @@',
        '-sshd: 10.0.0.5',
        '--- iptables INPUT (IPv4)\tcurrent',
        '+++ iptables INPUT (IPv4)\tplanned',
        '@@ -1,1 +0,0 @@',
        '-A INPUT -s 10.0.0.5/32 -j DROP'.replace(/^/, '-'),
        '',
      ].join('\n'),
    );
  });

  test('a new file is diffed against (absent)', () => {
    const text = renderDiff(
      plan({ fileChanges: [{ path: '/x', before: null, beforeSha256: null, after: 'a\n' }] }),
    );
    expect(text).toContain('--- /x\t(absent)\n+++ /x\tplanned\n@@ -0,0 +1,1 @@\n+a\n');
  });
});
