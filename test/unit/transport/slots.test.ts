import { jest } from '@jest/globals';
import { Slots, SlotWaitTimeout } from '../../../src/transport/slots.js';

/** Lets granted acquisitions run their continuations. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('Slots', () => {
  it('grants at most `limit` holders and hands freed slots to waiters in order', async () => {
    const slots = new Slots(2);
    const granted: string[] = [];
    const take = (name: string): Promise<void> => slots.acquire().then(() => void granted.push(name));
    const all = [take('a'), take('b'), take('c'), take('d')];
    await settle();
    expect(granted).toEqual(['a', 'b']);
    slots.release();
    await all[2];
    expect(granted).toEqual(['a', 'b', 'c']);
    slots.release();
    await all[3];
    expect(granted).toEqual(['a', 'b', 'c', 'd']);
    // Two releases were handed on, two remain held: one more release frees one slot.
    slots.release();
    await take('e');
    expect(granted).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('rejects the waiters when refused, but not the holders', async () => {
    const slots = new Slots(1);
    await slots.acquire();
    const waiting = slots.acquire();
    slots.refuseAll(new Error('connection lost'));
    await expect(waiting).rejects.toThrow('connection lost');
  });

  it('puts a waiter that asks to go first at the head of the line', async () => {
    const slots = new Slots(1);
    await slots.acquire();
    const granted: string[] = [];
    const later = slots.acquire().then(() => void granted.push('queued first'));
    const first = slots.acquire({ first: true }).then(() => void granted.push('went first'));
    slots.release();
    await first;
    expect(granted).toEqual(['went first']);
    slots.release();
    await later;
    expect(granted).toEqual(['went first', 'queued first']);
  });

  it('lets holders above a lowered limit keep their slots, and grants only below it', async () => {
    const slots = new Slots(3);
    await Promise.all([slots.acquire(), slots.acquire(), slots.acquire()]);
    slots.setLimit(1);
    let granted = false;
    const waiting = slots.acquire().then(() => void (granted = true));
    slots.release();
    slots.release();
    await settle();
    expect(granted).toBe(false);
    slots.release();
    await waiting;
    expect(granted).toBe(true);
  });

  it('grants waiters at once when the limit is raised', async () => {
    const slots = new Slots(1);
    await slots.acquire();
    const waiting = slots.acquire();
    slots.setLimit(2);
    await expect(waiting).resolves.toBeUndefined();
  });

  it('never lowers the limit below one', async () => {
    const slots = new Slots(2);
    slots.setLimit(0);
    expect(slots.limit).toBe(1);
    await expect(slots.acquire()).resolves.toBeUndefined();
  });

  it('gives up a wait after waitMs and leaves the line without taking a later slot', async () => {
    jest.useFakeTimers();
    try {
      const slots = new Slots(1);
      await slots.acquire();
      const waiting = slots.acquire({ waitMs: 500 });
      const rejected = expect(waiting).rejects.toThrow(SlotWaitTimeout);
      jest.advanceTimersByTime(500);
      await rejected;
      // The slot freed later goes to the next caller, not to the one that gave up.
      slots.release();
      await expect(slots.acquire({ waitMs: 10 })).resolves.toBeUndefined();
    } finally {
      jest.useRealTimers();
    }
  });
});
