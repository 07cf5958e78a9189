/**
 * Which kind of lab host `sshfix demo` boots: systemd where the machine can,
 * plain otherwise, and bad input when the user asked for what cannot run.
 */
import { chooseDemoKind, type DemoMachine } from '../../../src/cli/demo.js';

const CAN_BOOT: DemoMachine = { systemd: { ok: true }, rootBuilt: true };
const NO_NSPAWN: DemoMachine = {
  systemd: { ok: false, reason: 'missing: systemd-nspawn (apt-get install systemd-container debootstrap)' },
  rootBuilt: false,
};
const ROOT_NOT_BUILT: DemoMachine = { systemd: { ok: true }, rootBuilt: false };

describe('the kind of host sshfix demo boots', () => {
  it('auto: systemd hosts with ssh.service where the root is built and systemd-nspawn runs', () => {
    const choice = chooseDemoKind({ kind: 'auto' }, CAN_BOOT);
    expect(choice).toMatchObject({ ok: true, kind: 'systemd', sshdUnit: 'service', buildRoot: false });
  });

  it('auto: plain hosts where systemd hosts cannot boot, saying why', () => {
    const choice = chooseDemoKind({ kind: 'auto' }, NO_NSPAWN);
    expect(choice).toMatchObject({ ok: true, kind: 'plain', buildRoot: false });
    expect(choice.ok && choice.note).toMatch(/systemd hosts cannot boot here: missing: systemd-nspawn/);
  });

  it('auto: plain hosts while the root is not built, saying how to build it (no surprise download)', () => {
    const choice = chooseDemoKind({ kind: 'auto' }, ROOT_NOT_BUILT);
    expect(choice).toMatchObject({ ok: true, kind: 'plain', buildRoot: false });
    expect(choice.ok && choice.note).toMatch(/not built yet/);
    expect(choice.ok && choice.note).toContain('sshfix demo --kind systemd');
  });

  it('--kind systemd builds a missing root first, and says it takes minutes', () => {
    const choice = chooseDemoKind({ kind: 'systemd' }, ROOT_NOT_BUILT);
    expect(choice).toMatchObject({ ok: true, kind: 'systemd', sshdUnit: 'service', buildRoot: true });
    expect(choice.ok && choice.note).toMatch(/minutes/);
  });

  it('--kind systemd where systemd hosts cannot boot is bad input naming the reason', () => {
    const choice = chooseDemoKind({ kind: 'systemd' }, NO_NSPAWN);
    expect(choice.ok).toBe(false);
    expect(!choice.ok && choice.error).toMatch(/^--kind systemd: .*missing: systemd-nspawn/);
  });

  it('--kind plain boots plain hosts even where systemd hosts could boot', () => {
    expect(chooseDemoKind({ kind: 'plain' }, CAN_BOOT)).toMatchObject({ ok: true, kind: 'plain' });
  });

  it('--sshd-unit socket asks for systemd hosts: taken by auto, bad input with --kind plain', () => {
    expect(chooseDemoKind({ kind: 'auto', sshdUnit: 'socket' }, CAN_BOOT)).toMatchObject({
      ok: true,
      kind: 'systemd',
      sshdUnit: 'socket',
    });
    const cannot = chooseDemoKind({ kind: 'auto', sshdUnit: 'socket' }, NO_NSPAWN);
    expect(!cannot.ok && cannot.error).toMatch(/^--sshd-unit socket: .*missing: systemd-nspawn/);
    const plain = chooseDemoKind({ kind: 'plain', sshdUnit: 'socket' }, CAN_BOOT);
    expect(!plain.ok && plain.error).toMatch(/--sshd-unit is for hosts of the systemd kind/);
  });
});
