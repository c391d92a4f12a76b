import { subnetKey } from './address.js';
import { LruMap } from './lru-map.js';

/** One token bucket's shape: `burst` connections at once, refilled at `perMinute`. burst 0 disables it. */
export interface RateBucket {
  burst: number;
  perMinute: number;
}

export interface ConnectionRateSettings {
  perAddress: RateBucket;
  /** per /24 (IPv4) or /64 (IPv6), as maxPeersPerSubnet counts */
  perSubnet: RateBucket;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Caps how often one address and one subnet may open connections, so connect/close churn is
 * refused at accept and never reaches bitcoind. Token buckets; a refused attempt costs nothing,
 * so a client that backs off gets through again at the refill rate.
 */
export class ConnectionRate {
  // bounded: a bucket that drops out of the cache comes back full, which only errs towards accepting
  readonly #addresses = new LruMap<string, Bucket>(65_536);
  readonly #subnets = new LruMap<string, Bucket>(16_384);

  constructor(
    public settings: ConnectionRateSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** Take one connection from both buckets of `address`; false (and nothing taken) when either is empty. */
  take(address: string): boolean {
    const { perAddress, perSubnet } = this.settings;
    const now = this.now();
    const a = perAddress.burst > 0 ? refill(this.#addresses, address, perAddress, now) : null;
    const s = perSubnet.burst > 0 ? refill(this.#subnets, subnetKey(address), perSubnet, now) : null;
    if ((a && a.tokens < 1) || (s && s.tokens < 1)) return false;
    if (a) a.tokens -= 1;
    if (s) s.tokens -= 1;
    return true;
  }
}

function refill(cache: LruMap<string, Bucket>, key: string, shape: RateBucket, now: number): Bucket {
  let b = cache.get(key);
  if (!b) {
    b = { tokens: shape.burst, at: now };
    cache.set(key, b);
    return b;
  }
  b.tokens = Math.min(shape.burst, b.tokens + ((now - b.at) * shape.perMinute) / 60_000);
  b.at = now;
  return b;
}
