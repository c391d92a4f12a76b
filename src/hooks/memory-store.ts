/**
 * The in-process implementation of HookStore (ctx.store without Redis), and the error every
 * implementation throws when the shared store cannot be reached.
 */
import type { HookStore, StoreTtl } from './api.js';

/** A shared store (Redis) is unreachable: the caller should answer "try again later". */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  readonly code = 'store_unavailable';
}

const MAX_COUNTER = BigInt(Number.MAX_SAFE_INTEGER);

/** Refuse counters outside ±2^53: Redis' Lua sees numbers as doubles, so both stores share this bound. */
export function checkCounter(value: bigint, key: string): bigint {
  if (value > MAX_COUNTER || value < -MAX_COUNTER) throw new RangeError(`store counter ${key} would leave ±${MAX_COUNTER}`);
  return value;
}

export function ttlMs(options: StoreTtl | undefined): number | null {
  const s = options?.ttlSeconds;
  if (s === undefined) return null;
  if (!(s > 0) || !Number.isFinite(s)) throw new RangeError(`ttlSeconds must be a positive number, got ${s}`);
  return Math.ceil(s * 1000);
}

interface Entry {
  value: string;
  /** ms since the epoch; null: no expiry */
  expiresAt: number | null;
}

/** Keys of every namespace live in one map; `namespace(name)` gives a hook its slice. */
export class MemoryKv {
  readonly #map = new Map<string, Entry>();
  #sweeps = 0;

  constructor(readonly now: () => number = Date.now) {}

  namespace(name: string): HookStore {
    const k = (key: string) => `${name}\u0000${key}`;
    return {
      shared: false,
      get: async (key) => this.get(k(key)),
      set: async (key, value, o) => this.set(k(key), value, ttlMs(o)),
      setNX: async (key, value, o) => this.setNX(k(key), value, ttlMs(o)),
      incrBy: async (key, delta, o) => this.incrBy(k(key), delta, o?.floor === 0n),
      delete: async (key) => this.delete(k(key)),
      expire: async (key, seconds) => this.expire(k(key), ttlMs({ ttlSeconds: seconds })!),
    };
  }

  #live(key: string): Entry | undefined {
    const e = this.#map.get(key);
    if (e && e.expiresAt !== null && e.expiresAt <= this.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return e;
  }

  /** drop expired keys now and then, so keys nobody reads again do not pile up */
  #sweep(): void {
    if (++this.#sweeps % 1024 !== 0) return;
    const now = this.now();
    for (const [key, e] of this.#map) if (e.expiresAt !== null && e.expiresAt <= now) this.#map.delete(key);
  }

  get(key: string): string | null {
    return this.#live(key)?.value ?? null;
  }

  set(key: string, value: string, ttl: number | null): void {
    this.#sweep();
    this.#map.set(key, { value, expiresAt: ttl === null ? null : this.now() + ttl });
  }

  setNX(key: string, value: string, ttl: number | null): boolean {
    if (this.#live(key)) return false;
    this.set(key, value, ttl);
    return true;
  }

  incrBy(key: string, delta: bigint, floor0: boolean): bigint {
    const e = this.#live(key);
    if (e && !/^-?\d+$/.test(e.value)) throw new TypeError(`store key ${key} does not hold an integer`);
    let next = checkCounter((e ? BigInt(e.value) : 0n) + delta, key);
    if (floor0 && next < 0n) next = 0n;
    if (e) e.value = next.toString(); // keeps its expiry, as Redis' INCRBY does
    else this.set(key, next.toString(), null);
    return next;
  }

  delete(key: string): boolean {
    return this.#live(key) !== undefined && this.#map.delete(key);
  }

  expire(key: string, ms: number): boolean {
    const e = this.#live(key);
    if (!e) return false;
    e.expiresAt = this.now() + ms;
    return true;
  }
}
