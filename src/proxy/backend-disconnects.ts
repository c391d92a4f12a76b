import { LruMap } from './lru-map.js';

/**
 * bitcoind sees every proxied peer as 127.0.0.1, so it disconnects a misbehaving peer but
 * cannot discourage it. Counting the disconnects bitcoind initiates per real address, and
 * banning at `count` within `window`, restores what discouragement would do.
 *
 * Only a disconnect the peer caused may count. A closed session is a candidate when its
 * handshake had completed; it is judged `settleMs` later, once it is known whether the backend
 * went down around it. It counts only when, over [close - settle, close + settle]:
 *   - no backend connection attempt failed (an outage or a restart),
 *   - the backend closed few sessions of other addresses (a mass close is an outage, a restart
 *     or a full node; one address disconnected again and again is that peer),
 *   - and a session that was open before the close is still open (the backend stayed up).
 */
export const SETTLE_MS = 1500;

/** More backend closes of other addresses than this nearby (or a quarter of the sessions, if more) is a mass close. */
const MASS_CLOSES = 1;
/** Bounds on what is remembered while deciding. */
const MAX_CANDIDATES = 10_000;
const MAX_CLOSES = 10_000;

interface Candidate {
  address: string;
  at: number;
  /** sessions open just before this one closed, itself included */
  live: number;
}

export interface DisconnectJudge {
  /** true when a session opened before `t` (handshake complete) is still open: the backend stayed up */
  survivorSince(t: number): boolean;
  /** a candidate was judged (for the log) */
  judged(address: string, verdict: Verdict): void;
  /** an attributable disconnect of `address` reached the count */
  limitReached(address: string): void;
}

/** counted: the peer's doing; the others say why not: a connect failed, many sessions closed, none survived. */
export type Verdict = 'counted' | 'outage' | 'massClose' | 'noSurvivor';

export class BackendDisconnectTracker {
  // bounded: a flood of distinct addresses cannot grow this without limit
  readonly #hits = new LruMap<string, number[]>(50_000);
  /** when the backend closed sessions (handshaken or not), oldest first */
  #closes: { at: number; address: string }[] = [];
  #lastConnectFailure = -Infinity;
  readonly #candidates: Candidate[] = [];
  #timer: NodeJS.Timeout | null = null;
  /** candidates judged so far, by outcome (for tests and logs) */
  readonly judged: Record<Verdict, number> = { counted: 0, outage: 0, massClose: 0, noSurvivor: 0 };

  constructor(
    public count: number,
    public windowMs: number,
    private readonly judge: DisconnectJudge,
    public settleMs = SETTLE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A backend connection attempt failed: the backend is down (or refusing). */
  backendConnectFailed(): void {
    this.#lastConnectFailure = this.now();
  }

  /** bitcoind closed a session. `live`: sessions open just before, this one included. */
  backendClosed(address: string, handshakeComplete: boolean, live: number): void {
    if (this.count <= 0) return;
    const now = this.now();
    this.#closes.push({ at: now, address });
    if (this.#closes.length > MAX_CLOSES) this.#closes.splice(0, this.#closes.length - MAX_CLOSES);
    if (!handshakeComplete || this.#candidates.length >= MAX_CANDIDATES) return;
    this.#candidates.push({ address, at: now, live });
    this.#schedule();
  }

  /** Stop judging (proxy shutdown). */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#candidates.length = 0;
  }

  #schedule(): void {
    if (this.#timer || this.#candidates.length === 0) return;
    const wait = Math.max(0, this.#candidates[0]!.at + this.settleMs - this.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#decideDue();
      this.#schedule();
    }, wait);
    this.#timer.unref();
  }

  #decideDue(): void {
    const now = this.now();
    while (this.#candidates.length > 0 && this.#candidates[0]!.at + this.settleMs <= now) {
      const c = this.#candidates.shift()!;
      const verdict = this.#verdict(c);
      this.judged[verdict]++;
      this.judge.judged(c.address, verdict);
      if (verdict === 'counted' && this.#record(c.address)) this.judge.limitReached(c.address);
    }
    const keepFrom = now - 2 * this.settleMs;
    let drop = 0;
    const oldestNeeded = Math.min(keepFrom, this.#candidates.length > 0 ? this.#candidates[0]!.at - this.settleMs : keepFrom);
    while (drop < this.#closes.length && this.#closes[drop]!.at < oldestNeeded) drop++;
    if (drop > 0) this.#closes.splice(0, drop);
  }

  #verdict(c: Candidate): Verdict {
    const from = c.at - this.settleMs;
    const to = c.at + this.settleMs;
    if (this.#lastConnectFailure >= from) return 'outage';
    let others = 0;
    for (const x of this.#closes) if (x.at >= from && x.at <= to && x.address !== c.address) others++;
    if (others > Math.max(MASS_CLOSES, Math.floor(c.live / 4))) return 'massClose';
    if (!this.judge.survivorSince(c.at)) return 'noSurvivor';
    return 'counted';
  }

  /** One attributable disconnect; true when `address` has reached the limit within the window. */
  #record(address: string): boolean {
    const now = this.now();
    const recent = (this.#hits.get(address) ?? []).filter((t) => now - t < this.windowMs);
    recent.push(now);
    if (recent.length >= this.count) {
      this.#hits.delete(address);
      return true;
    }
    this.#hits.set(address, recent);
    return false;
  }
}
