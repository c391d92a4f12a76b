/**
 * The shared store in Redis (ioredis). Bans: a hash `<prefix>bans` (subnet → JSON) plus a
 * pub/sub channel of the same name that carries each change at once; every proxy applies them
 * to its local BanList, which is all the accept path reads. A periodic sync compares the whole
 * hash (pub/sub misses messages while a connection is down). Hook keys: `<prefix>hook:<ns>:<key>`.
 *
 * Redis down or slow: the offline queue is off and commands time out, so nothing piles up; the
 * proxy runs on its local bans, logs once per outage, reports `up = false`, and when Redis is
 * back publishes the bans it made meanwhile and takes the others'.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HookStore, StoreTtl } from '../hooks/api.js';
import { checkCounter, StoreUnavailableError, ttlMs } from '../hooks/memory-store.js';
import type { Ban } from '../proxy/ban-list.js';
import type { BanSink, ProxyStore } from './store.js';

export interface RedisStoreSettings {
  redis: string;
  prefix: string;
  /** ms between full ban syncs */
  syncInterval: number;
  /** ms a command may take before it counts as an outage (default 1000) */
  commandTimeout?: number;
  /** ms between liveness pings (default 1000): a hung Redis keeps its socket open */
  pingInterval?: number;
}

/** INCRBY, clamped at zero in the same step (KEEPTTL: a debit does not make a key immortal). */
const INCR_FLOOR0 = `local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n < 0 then redis.call('SET', KEYS[1], '0', 'KEEPTTL') return 0 end
return n`;

/** HSET only when it extends the ban: two proxies banning one subnet keep the later end. */
const BAN_MERGE = `local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(cjson.decode(cur)['until']) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[1], ARGV[4])
return 1`;

type BanEvent = { op: 'add'; ban: Ban; from: string } | { op: 'del'; subnet: string; from: string };

export class RedisStore implements ProxyStore {
  readonly kind = 'redis';
  /** tells our own pub/sub messages apart */
  readonly id = randomUUID();
  readonly #cmd: Redis;
  readonly #sub: Redis;
  readonly #log: Logger;
  readonly #banKey: string;
  #up = false;
  /** an outage was logged and not yet its end */
  #outage = false;
  #sink: BanSink | null = null;
  /** subnets this proxy knows to be in Redis: one of them gone from the hash was lifted elsewhere */
  readonly #known = new Set<string>();
  /** changes made here not yet in Redis (made during an outage, or in flight) */
  readonly #pendingAdds = new Map<string, Ban>();
  readonly #pendingDels = new Set<string>();
  #syncing: Promise<void> | null = null;
  /** the Redis process #known was learnt from (INFO run_id) */
  #runId: string | null = null;
  readonly #timers: NodeJS.Timeout[] = [];
  #closed = false;

  constructor(
    readonly settings: RedisStoreSettings,
    log: Logger,
  ) {
    this.#log = log;
    this.#banKey = `${settings.prefix}bans`;
    const options = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: settings.commandTimeout ?? 1000,
      connectTimeout: 2000,
      retryStrategy: (times: number) => Math.min(100 * times, 1000),
      lazyConnect: true,
    };
    this.#cmd = new Redis(settings.redis, options);
    this.#sub = new Redis(settings.redis, { ...options, autoResubscribe: false, commandTimeout: undefined });
    this.#cmd.on('ready', () => this.#reachable());
    this.#cmd.on('close', () => this.#unreachable('connection closed'));
    this.#cmd.on('error', (err: Error) => this.#unreachable(err.message));
    this.#sub.on('error', () => {}); // the command connection reports outages
    this.#sub.on('ready', () => {
      this.#sub.subscribe(this.#banKey).then(
        () => void this.sync(), // what was published while the subscription was down
        () => {},
      );
    });
    this.#sub.on('message', (_channel: string, text: string) => this.#onEvent(text));
  }

  /** Connect; a Redis down at start is an outage like any other (the proxy starts on local state). */
  async start(): Promise<void> {
    await Promise.all([this.#cmd.connect().catch(() => {}), this.#sub.connect().catch(() => {})]);
    const ping = setInterval(() => void this.#ping(), this.settings.pingInterval ?? 1000);
    const sync = setInterval(() => void this.sync(), this.settings.syncInterval);
    for (const t of [ping, sync]) this.#timers.push(t.unref());
    if (!this.#up) this.#unreachable('not reachable at start');
  }

  get up(): boolean {
    return this.#up;
  }

  async #ping(): Promise<void> {
    if (this.#cmd.status !== 'ready') return; // reconnecting: 'ready' will say when it is back
    try {
      await this.#cmd.ping();
      this.#reachable();
    } catch (err) {
      this.#unreachable((err as Error).message);
    }
  }

  #reachable(): void {
    if (this.#up || this.#closed) return;
    this.#up = true;
    if (this.#outage) this.#log.warn({ redis: redactUrl(this.settings.redis) }, 'shared store reachable again: reconciling bans');
    else this.#log.info({ redis: redactUrl(this.settings.redis) }, 'shared store connected');
    this.#outage = false;
    void this.sync();
  }

  #unreachable(why: string): void {
    if (this.#closed) return;
    this.#up = false;
    if (this.#outage) return;
    this.#outage = true;
    this.#log.error({ redis: redactUrl(this.settings.redis), err: why }, 'shared store unreachable: serving on local state; changes are published when it is back');
  }

  // ---- bans ---------------------------------------------------------------------------------

  attachBans(sink: BanSink): void {
    this.#sink = sink;
    void this.sync();
  }

  banAdded(ban: Ban): void {
    this.#pendingDels.delete(ban.subnet);
    this.#pendingAdds.set(ban.subnet, ban);
    void this.#publishPending();
  }

  banRemoved(subnet: string): void {
    this.#pendingAdds.delete(subnet);
    this.#pendingDels.add(subnet);
    void this.#publishPending();
  }

  async #publishPending(): Promise<void> {
    if (!this.#up) return;
    for (const [subnet, ban] of [...this.#pendingAdds]) {
      const event: BanEvent = { op: 'add', ban, from: this.id };
      try {
        await this.#cmd.eval(BAN_MERGE, 1, this.#banKey, subnet, JSON.stringify(ban), String(ban.until), JSON.stringify(event));
      } catch (err) {
        return this.#failed(err);
      }
      if (this.#pendingAdds.get(subnet) === ban) this.#pendingAdds.delete(subnet);
      this.#known.add(subnet);
    }
    for (const subnet of [...this.#pendingDels]) {
      const event: BanEvent = { op: 'del', subnet, from: this.id };
      try {
        await this.#cmd.multi().hdel(this.#banKey, subnet).publish(this.#banKey, JSON.stringify(event)).exec();
      } catch (err) {
        return this.#failed(err);
      }
      this.#pendingDels.delete(subnet);
      this.#known.delete(subnet);
    }
  }

  #failed(err: unknown): void {
    if (!isReplyError(err)) this.#unreachable((err as Error).message);
    else this.#log.error({ err: (err as Error).message }, 'shared store refused a ban change');
  }

  #onEvent(text: string): void {
    const sink = this.#sink;
    let e: BanEvent;
    try {
      e = JSON.parse(text) as BanEvent;
    } catch {
      return this.#log.warn({ message: text.slice(0, 200) }, 'unreadable message on the ban channel: ignored');
    }
    if (!sink || e.from === this.id) return;
    if (e.op === 'add' && isBan(e.ban)) {
      this.#known.add(e.ban.subnet);
      sink.applySharedBan(e.ban);
    } else if (e.op === 'del' && typeof e.subnet === 'string') {
      this.#known.delete(e.subnet);
      if (!this.#pendingAdds.has(e.subnet)) sink.applySharedUnban(e.subnet);
    }
  }

  /**
   * Publish what was made here meanwhile, then compare the whole ban hash with the local list:
   * take bans made elsewhere, drop bans lifted elsewhere, publish local ones Redis never had
   * (bans from this proxy's ban file). One sync at a time.
   */
  sync(): Promise<void> {
    if (!this.#up || !this.#sink || this.#closed) return Promise.resolve();
    this.#syncing ??= this.#sync().finally(() => (this.#syncing = null));
    return this.#syncing;
  }

  async #sync(): Promise<void> {
    const sink = this.#sink!;
    await this.#publishPending();
    let all: Record<string, string>;
    try {
      const runId = /^run_id:(\w+)/m.exec(await this.#cmd.info('server'))?.[1] ?? null;
      // Another Redis process (restarted without its newest writes, a failover to a lagging
      // replica): a ban missing from its hash may be lost, not lifted. Publish ours again.
      if (runId !== this.#runId) this.#known.clear();
      this.#runId = runId;
      all = await this.#cmd.hgetall(this.#banKey);
    } catch (err) {
      return this.#failed(err);
    }
    const now = Date.now();
    const remote = new Set<string>();
    const expired: string[] = [];
    for (const [subnet, json] of Object.entries(all)) {
      const ban = parseBan(json);
      if (!ban || ban.until <= now) {
        expired.push(subnet);
        continue;
      }
      remote.add(subnet);
      this.#known.add(subnet);
      if (!this.#pendingDels.has(subnet)) sink.applySharedBan(ban);
    }
    if (expired.length) await this.#cmd.hdel(this.#banKey, ...expired).catch(() => {});
    for (const ban of sink.localBans()) {
      if (remote.has(ban.subnet) || this.#pendingAdds.has(ban.subnet)) continue;
      if (this.#known.has(ban.subnet)) {
        this.#known.delete(ban.subnet);
        sink.applySharedUnban(ban.subnet);
      } else {
        this.#pendingAdds.set(ban.subnet, ban);
      }
    }
    await this.#publishPending();
  }

  // ---- hook keys ----------------------------------------------------------------------------

  hookStore(namespace: string): HookStore {
    const k = (key: string) => `${this.settings.prefix}hook:${namespace}:${key}`;
    const set = (key: string, value: string, o: StoreTtl | undefined, nx: boolean): Promise<string | null> => {
      const ms = ttlMs(o);
      if (ms === null) return nx ? this.#cmd.set(k(key), value, 'NX') : this.#cmd.set(k(key), value);
      return nx ? this.#cmd.set(k(key), value, 'PX', ms, 'NX') : this.#cmd.set(k(key), value, 'PX', ms);
    };
    return {
      shared: true,
      get: (key) => this.#op(() => this.#cmd.get(k(key))),
      set: (key, value, o) => this.#op(async () => void (await set(key, value, o, false))),
      setNX: (key, value, o) => this.#op(async () => (await set(key, value, o, true)) === 'OK'),
      incrBy: (key, delta, o) =>
        this.#op(async () => {
          checkCounter(delta, key);
          const n = o?.floor === 0n ? await this.#cmd.eval(INCR_FLOOR0, 1, k(key), delta.toString()) : await this.#cmd.incrby(k(key), delta.toString());
          return checkCounter(BigInt(n as number), key);
        }),
      delete: (key) => this.#op(async () => (await this.#cmd.del(k(key))) > 0),
      expire: (key, seconds) => this.#op(async () => (await this.#cmd.pexpire(k(key), ttlMs({ ttlSeconds: seconds })!)) === 1),
    };
  }

  /** Run one command; an outage (not a Redis reply error) becomes StoreUnavailableError. */
  async #op<T>(run: () => Promise<T>): Promise<T> {
    if (!this.#up) throw new StoreUnavailableError('the shared store (Redis) is unreachable; try again later');
    try {
      return await run();
    } catch (err) {
      if (isReplyError(err) || err instanceof RangeError || err instanceof TypeError) throw err;
      this.#unreachable((err as Error).message);
      throw new StoreUnavailableError(`the shared store (Redis) did not answer: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    await this.#publishPending().catch(() => {});
    this.#closed = true;
    this.#cmd.disconnect();
    this.#sub.disconnect();
  }
}

function isReplyError(err: unknown): boolean {
  return (err as Error | null)?.name === 'ReplyError';
}

function isBan(b: unknown): b is Ban {
  const x = b as Ban | null;
  return !!x && typeof x.subnet === 'string' && Number.isFinite(x.until) && typeof x.reason === 'string' && Number.isFinite(x.created);
}

function parseBan(json: string): Ban | null {
  try {
    const b = JSON.parse(json) as unknown;
    return isBan(b) ? b : null;
  } catch {
    return null;
  }
}

/** The URL for logs, without a password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://(unparsable)';
  }
}
