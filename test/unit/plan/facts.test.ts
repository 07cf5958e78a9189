import { changedFacts, describeChangedFacts } from '../../../src/plan/facts.js';
import type { Fact } from '../../../src/plan/types.js';

const digest = (c: string) => c.repeat(64);
const planned: Fact[] = [
  { key: 'host:sshd-version', value: '9.2', description: 'sshd version' },
  { key: 'host:sshd-unit', value: 'ssh service', description: 'sshd unit' },
  {
    key: 'file:/etc/hosts.allow',
    value: `sha256:${digest('a')} 0644 root:root`,
    description: '/etc/hosts.allow',
  },
  { key: 'file:/etc/hosts.deny', value: 'absent', description: '/etc/hosts.deny' },
];

describe('changedFacts', () => {
  test('the same reading, in any order, changed nothing', () => {
    expect(changedFacts(planned, [...planned].reverse())).toEqual([]);
    expect(changedFacts([], [])).toEqual([]);
  });

  test('names exactly the facts whose value differs, in the planned order', () => {
    const current = planned.map((f) =>
      f.key === 'file:/etc/hosts.allow'
        ? { ...f, value: `sha256:${digest('b')} 0644 root:root` }
        : f.key === 'host:sshd-unit'
          ? { ...f, value: 'ssh socket' }
          : f,
    );
    expect(changedFacts(planned, current)).toEqual([
      { key: 'host:sshd-unit', description: 'sshd unit', planned: 'ssh service', current: 'ssh socket' },
      {
        key: 'file:/etc/hosts.allow',
        description: '/etc/hosts.allow',
        planned: `sha256:${digest('a')} 0644 root:root`,
        current: `sha256:${digest('b')} 0644 root:root`,
      },
    ]);
  });

  test('a fact no longer read, and one read only now, both count', () => {
    const current: Fact[] = [
      ...planned.slice(0, 3),
      { key: 'file:/etc/ssh/sshd_config.d/99-new.conf', value: 'sha256:' + digest('c'), description: 'x' },
    ];
    expect(changedFacts(planned, current).map((c) => [c.key, c.planned, c.current])).toEqual([
      ['file:/etc/hosts.deny', 'absent', undefined],
      ['file:/etc/ssh/sshd_config.d/99-new.conf', undefined, 'sha256:' + digest('c')],
    ]);
  });

  test('the message says what changed, with digests shortened', () => {
    const current = [{ ...planned[2]!, value: 'absent' }];
    expect(describeChangedFacts(changedFacts([planned[2]!], current))).toEqual([
      '/etc/hosts.allow: sha256:aaaaaaaaaaaa… 0644 root:root → absent',
    ]);
  });
});
