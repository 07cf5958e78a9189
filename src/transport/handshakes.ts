/**
 * How many SSH handshakes run at once, apart from how many hosts are worked
 * on (--forks). A handshake is CPU work on both ends (key exchange, sshd's
 * re-exec and PAM); on a busy controller, or a lab whose hosts share its
 * CPUs, N handshakes at once each take about N times as long, so past some
 * N they all reach their time limit together and none completes. The window
 * adapts as TCP's congestion window does (AIMD): it starts moderate, grows
 * while handshakes complete quickly (by one per completion until the first
 * slow one, then by one per window's worth), and halves when one is slow or
 * times out — once per window, since the handshakes already in flight were
 * started under the old window. A handshake that fails otherwise (refused,
 * reset, a bad key) says nothing about load and changes nothing.
 *
 * Pure apart from Slots' timers: tests drive it with completions of their own.
 */
import { Slots } from './slots.js';

export interface HandshakeWindowOptions {
  /** Handshakes allowed at first. */
  initial: number;
  min: number;
  max: number;
  /**
   * A handshake that takes more than this fraction of its own time limit is
   * slow: the window halves, so that the next ones finish well within theirs.
   */
  slowFraction: number;
}

export const DEFAULT_HANDSHAKE_WINDOW: HandshakeWindowOptions = {
  initial: 16,
  min: 2,
  max: 256,
  slowFraction: 0.25,
};

/** How a handshake ended, as the window sees it. */
export type HandshakeOutcome =
  | { kind: 'completed'; tookMs: number }
  | { kind: 'timed-out' }
  /** Refused, reset, authentication or host key failure: nothing about load. */
  | { kind: 'failed' };

/** A slot held for one handshake; `finish` gives it back and tells the window how it went. */
export interface HandshakeTicket {
  finish(outcome: HandshakeOutcome): void;
}

export interface HandshakeWait {
  /** Goes before every non-urgent waiter (a confirmation racing the host's rollback timer). */
  urgent?: boolean;
  /** Rejects with SlotWaitTimeout when no slot came free within this. */
  waitMs?: number;
  /** Rejects with SlotWaitAborted when this fires while waiting. */
  abort?: AbortSignal;
  /** The handshake's own time limit, against which "slow" is judged. */
  timeLimitMs: number;
}

export class HandshakeWindow {
  private readonly slots: Slots;
  /** The window, fractional: it grows by fractions of a slot in congestion avoidance. */
  private size: number;
  /** Until the first slow handshake the window doubles per round trip (TCP's slow start). */
  private slowStart = true;
  /** Handshakes started so far; each ticket knows its number. */
  private started = 0;
  /** Handshakes numbered up to this one were in flight at the last cut: they do not cut again. */
  private cutCoversUpTo = 0;

  constructor(private readonly options: HandshakeWindowOptions = DEFAULT_HANDSHAKE_WINDOW) {
    this.size = Math.min(options.max, Math.max(options.min, options.initial));
    this.slots = new Slots(Math.floor(this.size));
  }

  /** Handshakes allowed in flight now. */
  get limit(): number {
    return this.slots.limit;
  }

  /** Handshakes in flight now. */
  get inFlight(): number {
    return this.slots.holders;
  }

  /** Handshakes waiting for a slot now. */
  get waiting(): number {
    return this.slots.waiters;
  }

  async acquire(wait: HandshakeWait): Promise<HandshakeTicket> {
    await this.slots.acquire({
      ...(wait.urgent ? { urgent: true } : {}),
      ...(wait.waitMs !== undefined ? { waitMs: Math.max(0, wait.waitMs) } : {}),
      ...(wait.abort !== undefined ? { abort: wait.abort } : {}),
    });
    const number = ++this.started;
    let finished = false;
    return {
      finish: (outcome) => {
        if (finished) return;
        finished = true;
        this.adapt(number, outcome, wait.timeLimitMs);
        this.slots.release();
      },
    };
  }

  private adapt(number: number, outcome: HandshakeOutcome, timeLimitMs: number): void {
    if (outcome.kind === 'failed') return;
    const slow = outcome.kind === 'timed-out' || outcome.tookMs > timeLimitMs * this.options.slowFraction;
    if (slow) {
      if (number <= this.cutCoversUpTo) return;
      this.slowStart = false;
      this.cutCoversUpTo = this.started;
      this.resize(this.size / 2);
    } else {
      this.resize(this.size + (this.slowStart ? 1 : 1 / this.size));
    }
  }

  private resize(size: number): void {
    this.size = Math.min(this.options.max, Math.max(this.options.min, size));
    if (Math.floor(this.size) !== this.slots.limit) this.slots.setLimit(Math.floor(this.size));
  }
}

/** The window every SSH handshake of this process goes through. */
export const handshakeWindow = new HandshakeWindow();
