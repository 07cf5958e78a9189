/**
 * Counting semaphores for the transport: at most `limit` holders, the rest
 * wait in order. Pure (timers only): no I/O, so the queueing rules are tested
 * on their own.
 */

/** A wait for a slot that ran out of time; the waiter is no longer queued. */
export class SlotWaitTimeout extends Error {
  constructor(readonly waitedMs: number) {
    super(`no slot was free within ${waitedMs} ms`);
    this.name = 'SlotWaitTimeout';
  }
}

interface Waiter {
  grant: () => void;
  refuse: (error: Error) => void;
}

export class Slots {
  private held = 0;
  private readonly waiting: Waiter[] = [];

  constructor(private limitNow: number) {}

  /** How many holders are allowed now. */
  get limit(): number {
    return this.limitNow;
  }

  /**
   * Takes a slot, waiting in line for one. `first` puts the caller at the head
   * of the line (a holder that had to give its slot back keeps its turn).
   * With `waitMs`, a wait longer than that rejects with SlotWaitTimeout.
   */
  acquire(options: { first?: boolean; waitMs?: number } = {}): Promise<void> {
    if (this.held < this.limitNow && this.waiting.length === 0) {
      this.held++;
      return Promise.resolve();
    }
    return new Promise((grant, refuse) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(timer);
          grant();
        },
        refuse: (error) => {
          clearTimeout(timer);
          refuse(error);
        },
      };
      if (options.first) this.waiting.unshift(waiter);
      else this.waiting.push(waiter);
      if (options.waitMs !== undefined) {
        const waitMs = options.waitMs;
        timer = setTimeout(() => {
          const index = this.waiting.indexOf(waiter);
          if (index >= 0) this.waiting.splice(index, 1);
          refuse(new SlotWaitTimeout(waitMs));
        }, waitMs);
      }
    });
  }

  release(): void {
    this.held--;
    this.grantWhileFree();
  }

  /** Changes how many holders are allowed; holders above a lowered limit keep their slots. */
  setLimit(limit: number): void {
    this.limitNow = Math.max(1, limit);
    this.grantWhileFree();
  }

  refuseAll(error: Error): void {
    for (const waiter of this.waiting.splice(0)) waiter.refuse(error);
  }

  private grantWhileFree(): void {
    while (this.held < this.limitNow) {
      const nextInLine = this.waiting.shift();
      if (!nextInLine) return;
      this.held++;
      nextInLine.grant();
    }
  }
}
