import { LRUCache } from 'lru-cache';

/**
 * bitcoind sees every proxied peer as 127.0.0.1, so it disconnects a misbehaving peer but
 * cannot discourage it. Counting the disconnects bitcoind initiates per real address, and
 * banning at `count` within `window`, restores what discouragement would do.
 */
export class BackendDisconnectTracker {
  // bounded: a flood of distinct addresses cannot grow this without limit
  readonly #hits = new LRUCache<string, number[]>({ max: 50_000 });

  constructor(
    public count: number,
    public windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Record one backend-initiated disconnect; true when `address` has reached the limit. */
  record(address: string): boolean {
    if (this.count <= 0) return false;
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
