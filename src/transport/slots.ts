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

/** A wait for a slot given up because its abort signal fired; the waiter is no longer queued. */
export class SlotWaitAborted extends Error {
  constructor() {
    super('gave up waiting for a slot');
    this.name = 'SlotWaitAborted';
  }
}

interface Waiter {
  grant: () => void;
  refuse: (error: Error) => void;
  urgent: boolean;
}

export class Slots {
  private held = 0;
  private readonly waiting: Waiter[] = [];

  constructor(private limitNow: number) {}

  /** How many holders are allowed now. */
  get limit(): number {
    return this.limitNow;
  }

  /** Holders now. */
  get holders(): number {
    return this.held;
  }

  /** Callers waiting for a slot now. */
  get waiters(): number {
    return this.waiting.length;
  }

  /**
   * Takes a slot, waiting in line for one. `first` puts the caller at the head
   * of the line (a holder that had to give its slot back keeps its turn);
   * `urgent` puts it behind the urgent waiters already in line but before
   * all others, so that urgent callers keep their order among themselves.
   * With `waitMs`, a wait longer than that rejects with SlotWaitTimeout; an
   * `abort` that fires while waiting rejects with SlotWaitAborted.
   */
  acquire(
    options: { first?: boolean; urgent?: boolean; waitMs?: number; abort?: AbortSignal } = {},
  ): Promise<void> {
    if (options.abort?.aborted) return Promise.reject(new SlotWaitAborted());
    if (this.held < this.limitNow && this.waiting.length === 0) {
      this.held++;
      return Promise.resolve();
    }
    return new Promise((grant, refuse) => {
      let timer: NodeJS.Timeout | undefined;
      const abort = options.abort;
      const leave = (): void => {
        clearTimeout(timer);
        abort?.removeEventListener('abort', onAbort);
      };
      const dequeue = (): void => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
      };
      const onAbort = (): void => {
        dequeue();
        leave();
        refuse(new SlotWaitAborted());
      };
      const waiter: Waiter = {
        grant: () => {
          leave();
          grant();
        },
        refuse: (error) => {
          leave();
          refuse(error);
        },
        urgent: options.urgent === true || options.first === true,
      };
      if (options.first) this.waiting.unshift(waiter);
      else if (options.urgent) {
        const behindUrgent = this.waiting.findIndex((w) => !w.urgent);
        if (behindUrgent === -1) this.waiting.push(waiter);
        else this.waiting.splice(behindUrgent, 0, waiter);
      } else this.waiting.push(waiter);
      if (options.waitMs !== undefined) {
        const waitMs = options.waitMs;
        timer = setTimeout(() => {
          dequeue();
          leave();
          refuse(new SlotWaitTimeout(waitMs));
        }, waitMs);
      }
      abort?.addEventListener('abort', onAbort, { once: true });
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
