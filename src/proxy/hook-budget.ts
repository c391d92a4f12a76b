import { performance } from 'node:perf_hooks';

/**
 * Per-peer fairness for hook time. Synchronous hook work blocks the event loop for every
 * peer; bitcoind gives each peer one message per turn of its round robin, and we give each
 * peer a share of time instead: a token bucket of `budgetMs` that refills at budgetMs per
 * windowMs. A peer that used it up goes into debt and waits (its frames held, its socket
 * paused) until the debt is repaid, so over time it gets at most budgetMs/windowMs of the loop.
 * Peers back in budget then take turns, one per turn of the event loop, with every socket's
 * I/O in between: however many peers are throttled, the others wait at most one budget.
 */
export interface HookBudgetSettings {
  budgetMs: number;
  windowMs: number;
}

export class HookBudget {
  /** true while the peer is in debt: hold its frames until refilled() settles */
  exhausted = false;
  /** ms of hook time available; negative is debt */
  #level: number;
  #at = performance.now();
  #refill: Promise<null> | null = null;

  constructor(readonly settings: HookBudgetSettings | null) {
    this.#level = settings?.budgetMs ?? 0;
  }

  /** Book `ms` of hook time. Returns true when this charge used up the budget (a new throttle). */
  charge(ms: number, now = performance.now()): boolean {
    const s = this.settings;
    if (s === null) return false;
    this.#level = Math.min(s.budgetMs, this.#level + ((now - this.#at) * s.budgetMs) / s.windowMs) - ms;
    this.#at = now;
    if (this.#level > 0 || this.exhausted) return false;
    this.exhausted = true;
    return true;
  }

  /**
   * Resolves (with null, as a dropped frame) when the debt is repaid and a quarter of the budget
   * is back; one timer however many lanes wait. Waiting only until the debt is repaid would let
   * the peer run just until the next charge, a few frames per timer tick: its share of the loop
   * would shrink far below budgetMs/windowMs. With a quarter back, it works in bursts of at
   * least that (12.5 ms by default) and still averages its share.
   */
  refilled(): Promise<null> {
    if (this.#refill) return this.#refill;
    const s = this.settings!;
    const waitMs = Math.max(1, Math.ceil(((s.budgetMs / 4 - this.#level) * s.windowMs) / s.budgetMs));
    this.#refill = new Promise<null>((resolve) => {
      // unref: a closed session's pending refill must not keep the process alive
      setTimeout(
        () =>
          takeTurn(() => {
            this.charge(0);
            this.exhausted = false;
            this.#refill = null;
            resolve(null);
          }),
        waitMs,
      ).unref();
    });
    return this.#refill;
  }
}

/** Peers whose debt is repaid, waiting for their turn (the event loop is one for the process). */
const turns: (() => void)[] = [];
let turning = false;

function takeTurn(go: () => void): void {
  turns.push(go);
  if (turning) return;
  turning = true;
  setImmediate(nextTurn);
}

/** One peer per check phase; a setImmediate queued from here runs after the next poll phase (I/O). */
function nextTurn(): void {
  turns.shift()?.();
  if (turns.length > 0) setImmediate(nextTurn);
  else turning = false;
}
