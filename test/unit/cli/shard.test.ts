import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { runCli } from '../../support/cli.js';
import { ConfigError } from '../../../src/config/diagnostics.js';
import { parseShard, selectShard, shardHosts } from '../../../src/cli/shard.js';

const hostNames = fc.array(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 60 });
const shardCount = fc.integer({ min: 1, max: 12 });

describe('parseShard', () => {
  test.each([
    ['1/1', { index: 1, count: 1 }],
    ['3/5', { index: 3, count: 5 }],
    [' 2 / 2 ', { index: 2, count: 2 }],
  ])('%j', (text, expected) => {
    expect(parseShard(text)).toEqual(expected);
  });

  test.each([
    ['', 'expected K/N'],
    ['2', 'expected K/N'],
    ['a/b', 'expected K/N'],
    ['-1/3', 'expected K/N'],
    ['1.5/3', 'expected K/N'],
    ['0/3', 'K must be between 1 and 3'],
    ['4/3', 'K must be between 1 and 3'],
    ['1/0', 'N (the number of shards) must be at least 1'],
  ])('rejects %j', (text, message) => {
    expect(() => parseShard(text)).toThrow(ConfigError);
    expect(() => parseShard(text)).toThrow(message);
    expect(() => parseShard(text)).toThrow(`--shard '${text}'`);
  });
});

describe('shardHosts', () => {
  test('round-robin over the names sorted by code units, kept in the given order', () => {
    const hosts = ['web03', 'db01', 'web01', 'Web02', 'web02'];
    // Sorted: Web02 db01 web01 web02 web03 ('W' < 'd' < 'w' in code units, unlike a locale sort).
    expect(shardHosts(hosts, { index: 1, count: 2 })).toEqual(['web03', 'web01', 'Web02']);
    expect(shardHosts(hosts, { index: 2, count: 2 })).toEqual(['db01', 'web02']);
  });

  test('more shards than hosts leaves the last shards empty', () => {
    expect(shardHosts(['a', 'b'], { index: 3, count: 3 })).toEqual([]);
  });

  test('property: shards 1..N are disjoint and together are exactly the hosts', () => {
    fc.assert(
      fc.property(hostNames, shardCount, (hosts, count) => {
        const shards = Array.from({ length: count }, (_, i) => shardHosts(hosts, { index: i + 1, count }));
        const all = shards.flat();
        expect(new Set(all).size).toBe(all.length);
        expect([...all].sort()).toEqual([...new Set(hosts)].sort());
      }),
    );
  });

  test('property: sizes differ by at most one host', () => {
    fc.assert(
      fc.property(hostNames, shardCount, (hosts, count) => {
        const sizes = Array.from(
          { length: count },
          (_, i) => shardHosts(hosts, { index: i + 1, count }).length,
        );
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }),
    );
  });

  test('property: the split does not depend on the order the hosts come in', () => {
    fc.assert(
      fc.property(
        hostNames.chain((hosts) =>
          fc.tuple(fc.constant(hosts), fc.shuffledSubarray(hosts, { minLength: hosts.length })),
        ),
        shardCount,
        ([hosts, shuffled], count) => {
          for (let index = 1; index <= count; index++) {
            const a = shardHosts(hosts, { index, count });
            const b = shardHosts(shuffled, { index, count });
            expect([...a].sort()).toEqual([...b].sort());
          }
        },
      ),
    );
  });
});

test('selectShard keeps the items of the shard, and all of them without one', () => {
  const jobs = ['c', 'a', 'b'].map((host) => ({ host, plays: [] }));
  expect(selectShard(jobs, { index: 1, count: 2 }).map((j) => j.host)).toEqual(['c', 'a']);
  expect(selectShard(jobs, { index: 2, count: 2 }).map((j) => j.host)).toEqual(['b']);
  expect(selectShard(jobs, undefined)).toEqual(jobs);
});

describe('sshfix plan --shard', () => {
  let dir: string;
  let playbook: string;
  let inventory: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-shard-'));
    playbook = path.join(dir, 'p.yml');
    fs.writeFileSync(
      playbook,
      `- hosts: all\n  tasks:\n    - name: f\n      file: { dest: "${dir}/{{ inventory_hostname }}", content: x }\n`,
    );
    inventory = path.join(dir, 'hosts.ini');
    fs.writeFileSync(
      inventory,
      ['web2', 'db1', 'web1', 'web3', 'db2'].map((h) => `${h} ansible_connection=local\n`).join(''),
    );
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const hostsOf = async (...extra: string[]) => {
    const run = await runCli(['plan', playbook, '-i', inventory, '--format', 'json', ...extra]);
    expect(run.code).toBe(0);
    return Object.keys((JSON.parse(run.stdout) as { hosts: Record<string, unknown> }).hosts);
  };

  test('splits the hosts selected after --limit; the shards of one run cover each host once', async () => {
    // Sorted: db1 db2 web1 web2 web3; reported in inventory order.
    expect(await hostsOf('--shard', '1/2')).toEqual(['db1', 'web1', 'web3']);
    expect(await hostsOf('--shard', '2/2')).toEqual(['web2', 'db2']);
    expect(await hostsOf('--shard', '1/2', '--limit', 'web*')).toEqual(['web1', 'web3']);
    expect(await hostsOf('--shard', '2/2', '--limit', 'web*')).toEqual(['web2']);
  });

  test('a bad --shard is bad input: exit 1, nothing run', async () => {
    const run = await runCli(['apply', playbook, '-i', inventory, '--shard', '3/2']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("--shard '3/2': K must be between 1 and 2");
    expect(fs.readdirSync(dir).sort()).toEqual(['hosts.ini', 'p.yml']);
  });
});
