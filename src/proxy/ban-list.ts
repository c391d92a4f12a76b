import { promises as fs } from 'node:fs';
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';
import { appendAtomic, checkWritable, readIfExists, removeStaleTemporaries, writeAtomic } from '../hooks/atomic-file.js';
import { parseAddress, parseSubnet, subnetText, type Subnet } from './address.js';

export interface Ban {
  /** CIDR; a single address is /32 or /128 */
  subnet: string;
  /** ms since the epoch; the ban ends then */
  until: number;
  reason: string;
  created: number;
  /**
   * Made by the proxy itself (misbehaviour, a hook, backend disconnects), not by an operator:
   * these are bounded (maxAutomatic) and the first to go when the bound is reached.
   */
  automatic?: true;
}

interface BanEntry extends Ban {
  parsed: Subnet;
}

export interface BanListOptions {
  now?: () => number;
  log?: Logger;
  /** called on every failed write of the ban file (bhp_ban_write_failures_total) */
  onWriteFailure?: () => void;
  /** first retry delay after a failed write; doubles up to maxRetryMs */
  retryMs?: number;
  maxRetryMs?: number;
  /** automatic bans held at most; at the bound a new one replaces the one that ends soonest */
  maxAutomatic?: number;
  /** an automatic ban was dropped to make room for a new one (bhp_bans_evicted_total) */
  onEvict?: (ban: Ban) => void;
}

interface FlushWaiter {
  /** the change count this caller needs on disk */
  version: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

const FILE_VERSION = 1;
/**
 * Automatic bans are per address, so a peer rotating through its IPv6 prefix could grow the
 * list (and the file rewritten on every change) without end; bitcoind's discouragement filter
 * holds 50,000 addresses for the same reason. Operators' bans are never bounded nor evicted.
 */
export const DEFAULT_MAX_AUTOMATIC_BANS = 10_000;
/** the largest time a Date can hold; an `until` beyond it could not be printed as ISO */
const MAX_TIME_MS = 8.64e15;

/** A ban file entry that load() could not read, with why. */
export interface RejectedEntry {
  entry: unknown;
  problem: string;
}

/**
 * Banned addresses and subnets with expiry, persisted as JSON through writeAtomic.
 *
 * Durability: every change bumps a version; `flush()` resolves once a write holding that
 * version is fsynced (concurrent callers share one write) and rejects if that write failed.
 * A failed write never throws out of the proxy: it is logged once per outage, counted,
 * retried with backoff, and the bans stay enforced in memory meanwhile.
 */
export class BanList {
  readonly #bans = new Map<string, BanEntry>();
  /**
   * How many bans there are of each family and prefix length: find() looks up the address's
   * subnet for each length present instead of testing every ban (it runs for every connect).
   */
  readonly #lengths = { ipv4: new Map<number, number>(), ipv6: new Map<number, number>() };
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly #onWriteFailure: () => void;
  readonly #retryMs: number;
  readonly #maxRetryMs: number;
  readonly #onEvict: (ban: Ban) => void;
  /** automatic bans held at most (settable: a reload changes it for the bans that follow) */
  maxAutomatic: number;
  #automatic = 0;
  /** the automatic ban that ends soonest (null: none); undefined until a walk of the list finds it */
  #soonest: BanEntry | null | undefined = null;
  /** when size last pruned expired bans: it runs at every ban, and a prune walks the whole list */
  #prunedAt = -Infinity;
  /** bumped by every change; the file holds #savedVersion */
  #version = 0;
  #savedVersion = 0;
  #writing: Promise<void> | null = null;
  #waiters: FlushWaiter[] = [];
  #retryTimer: NodeJS.Timeout | null = null;
  #retryDelay: number;
  /** consecutive failed writes; > 0 means an outage is going on */
  #failures = 0;
  #closed = false;

  constructor(
    readonly file: string | null,
    options: BanListOptions = {},
  ) {
    this.#now = options.now ?? Date.now;
    this.#log = options.log;
    this.#onWriteFailure = options.onWriteFailure ?? (() => {});
    this.#retryMs = this.#retryDelay = options.retryMs ?? 1000;
    this.#maxRetryMs = options.maxRetryMs ?? 60_000;
    this.maxAutomatic = options.maxAutomatic ?? DEFAULT_MAX_AUTOMATIC_BANS;
    this.#onEvict = options.onEvict ?? (() => {});
  }

  get rejectedFile(): string | null {
    return this.file ? `${this.file}.rejected` : null;
  }

  /** true while writes of the ban file keep failing */
  get writeFailing(): boolean {
    return this.#failures > 0;
  }

  /**
   * Load the ban file; a missing file is an empty list. It reads what the proxy writes and
   * what GET /bans prints. An entry it cannot read is logged and appended to FILE.rejected
   * before anything else can rewrite FILE, so it is never lost. Throws on a file that is not
   * JSON or has an unknown format (never silently drops bans).
   */
  async load(): Promise<void> {
    if (!this.file) return;
    await removeStaleTemporaries(this.file);
    const text = await readIfExists(this.file);
    if (text === null) return;
    const entries = banEntries(this.file, text);
    const now = this.#now();
    const rejected: RejectedEntry[] = [];
    let expired = 0;
    const read: BanEntry[] = [];
    for (const raw of entries) {
      const entry = readEntry(raw);
      if (typeof entry === 'string') rejected.push({ entry: raw, problem: entry });
      else if (entry.until <= now) expired++; // the normal end of a ban
      else read.push(entry);
    }
    // latest end first: over maxAutomatic, the latest-ending automatic bans are the ones kept,
    // and the rest are passed over, not each taken and evicted (a walk of the list each: minutes
    // for a file of 300k bans)
    read.sort((a, b) => b.until - a.until);
    for (const entry of read) {
      const prev = this.#bans.get(entry.subnet);
      if ((!prev || prev.until < entry.until) && !this.#firstToGo(entry, prev)) this.#set(entry);
    }
    if (expired) this.#log?.info({ file: this.file, expired }, 'expired bans not loaded');
    if (rejected.length) await this.#keepRejected(rejected);
  }

  async #keepRejected(rejected: RejectedEntry[]): Promise<void> {
    const side = this.rejectedFile!;
    const existing = (await readIfExists(side)) ?? '';
    const known = new Set(existing.split('\n').filter(Boolean).map((l) => sideKey(l)));
    let lines = '';
    for (const r of rejected) {
      this.#log?.warn({ file: this.file, entry: preview(r.entry), problem: r.problem, keptIn: side }, 'ban file entry not loaded; kept in the side file');
      const line = JSON.stringify({ rejectedAt: new Date(this.#now()).toISOString(), problem: r.problem, entry: r.entry ?? null });
      if (!known.has(sideKey(line))) lines += line + '\n';
    }
    // durable before any save rewrites the main file without these entries
    if (lines) await appendAtomic(side, lines);
  }

  /**
   * Add or extend a ban. Returns the normalised entry, or null when `subnet` does not parse
   * or `durationMs` is not positive. The ban holds at once; flush() tells when it is on disk.
   */
  add(subnet: string, durationMs: number, reason: string, automatic = false): Ban | null {
    const parsed = parseBanSubnet(subnet);
    if (!parsed || !(durationMs > 0)) return null;
    const now = this.#now();
    const prev = this.#bans.get(parsed.text);
    const until = Math.min(MAX_TIME_MS, Math.max(prev?.until ?? 0, now + durationMs));
    const entry: BanEntry = { subnet: parsed.text, until, reason, created: prev?.created ?? now, parsed };
    // an operator's ban stays one when the proxy extends it
    if (automatic && (!prev || prev.automatic)) entry.automatic = true;
    this.#set(entry);
    this.#changed();
    return publicBan(entry);
  }

  /**
   * Take a ban made elsewhere (another proxy) as it is: its end and creation time. Returns the
   * entry when it is new here or ends later than ours, null when it changes nothing.
   */
  merge(ban: Ban): Ban | null {
    const parsed = parseBanSubnet(ban.subnet);
    if (!parsed || !(ban.until > this.#now())) return null;
    const prev = this.#bans.get(parsed.text);
    if (prev && prev.until >= ban.until) return null;
    const until = Math.min(MAX_TIME_MS, ban.until);
    const entry: BanEntry = { subnet: parsed.text, until, reason: ban.reason, created: prev?.created ?? ban.created, parsed };
    if (ban.automatic === true && (!prev || prev.automatic)) entry.automatic = true;
    // Redis offers every ban of the fleet again at each sync: one that would be evicted first
    // must not evict a later-ending one (to be taken back, evicting another, at the next sync)
    if (this.#firstToGo(entry, prev)) return null;
    this.#set(entry);
    this.#changed();
    return publicBan(entry);
  }

  remove(subnet: string): boolean {
    const parsed = parseBanSubnet(subnet);
    const removed = parsed ? this.#delete(parsed.text) : false;
    if (removed) this.#changed();
    return removed;
  }

  /** The ban that covers `address`, if any (an expired one found on the way is pruned). */
  find(address: string): Ban | null {
    const a = parseAddress(address);
    if (!a) return null;
    const now = this.#now();
    for (const bits of this.#lengths[a.kind()].keys()) {
      const key = subnetText(a, bits);
      const b = this.#bans.get(key);
      if (!b) continue;
      if (b.until > now) return publicBan(b);
      this.#delete(key);
    }
    return null;
  }

  /** The bans in force (expired ones are pruned on the way). */
  list(): Ban[] {
    this.#prune();
    return [...this.#bans.values()].map(publicBan);
  }

  /** A new automatic ban at the bound that ends no later than every automatic ban held: the next to be evicted. */
  #firstToGo(entry: BanEntry, prev: BanEntry | undefined): boolean {
    if (!entry.automatic || prev?.automatic || this.#automatic < this.maxAutomatic) return false;
    const soonest = this.#soonestAutomatic();
    return soonest !== null && entry.until <= soonest.until;
  }

  #soonestAutomatic(): BanEntry | null {
    if (this.#soonest === undefined) {
      let soonest: BanEntry | null = null;
      for (const b of this.#bans.values()) if (b.automatic && (!soonest || b.until < soonest.until)) soonest = b;
      this.#soonest = soonest;
    }
    return this.#soonest;
  }

  #set(entry: BanEntry): void {
    const prev = this.#bans.get(entry.subnet);
    if (!prev) countLength(this.#lengths[entry.parsed.addr.kind()], entry.parsed.bits, 1);
    else if (prev.automatic) this.#automatic--;
    if (prev && prev === this.#soonest) this.#soonest = undefined;
    if (entry.automatic) {
      if (!prev?.automatic && this.#automatic >= this.maxAutomatic) this.#evictAutomatic();
      this.#automatic++;
    }
    this.#bans.set(entry.subnet, entry);
    if (entry.automatic && this.#soonest !== undefined && (this.#soonest === null || entry.until < this.#soonest.until)) this.#soonest = entry;
  }

  #delete(key: string): boolean {
    const b = this.#bans.get(key);
    if (!b) return false;
    this.#bans.delete(key);
    countLength(this.#lengths[b.parsed.addr.kind()], b.parsed.bits, -1);
    if (b.automatic) this.#automatic--;
    if (b === this.#soonest) this.#soonest = undefined;
    return true;
  }

  /**
   * Make room for one automatic ban: the one that ends soonest goes (an ended one first, which
   * is no eviction). No prune of the whole list here: it could drop the entry #set is replacing.
   */
  #evictAutomatic(): void {
    const now = this.#now();
    const surplus = this.#automatic - this.maxAutomatic + 1;
    // more than one after a reload lowered the bound (thousands, maybe): one sort, not a walk each
    const going =
      surplus > 1
        ? [...this.#bans.values()]
            .filter((b) => b.automatic)
            .sort((a, b) => a.until - b.until)
            .slice(0, surplus)
        : [this.#soonestAutomatic()];
    for (const b of going) {
      if (!b) return;
      this.#delete(b.subnet);
      if (b.until > now) this.#onEvict(publicBan(b));
    }
  }

  #prune(): void {
    const now = (this.#prunedAt = this.#now());
    for (const [key, b] of this.#bans) if (b.until <= now) this.#delete(key);
  }

  /** Bans in force; expired ones are pruned at most once a second (this runs for every ban made). */
  get size(): number {
    if (this.#now() - this.#prunedAt >= 1000) this.#prune();
    return this.#bans.size;
  }

  /** automatic bans held (at most maxAutomatic) */
  get automaticCount(): number {
    return this.#automatic;
  }

  /** Resolves once every change made so far is fsynced; rejects with the error of the write that held them. */
  flush(): Promise<void> {
    if (!this.file || this.#savedVersion >= this.#version) return Promise.resolve();
    const version = this.#version;
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ version, resolve, reject }));
    // a caller that waits (the admin API) tries now even during an outage's backoff
    this.#startWriting();
    return done;
  }

  /**
   * Write the list now, changed or not (at shutdown: a ban file removed or edited meanwhile is
   * put back). Never rejects: failures are already logged, counted and retried.
   */
  async save(): Promise<void> {
    this.#version++;
    await this.flush().catch(() => {});
  }

  /** Stop retrying (the proxy is shutting down); the last save is still attempted by save(). */
  close(): void {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  #changed(): void {
    this.#version++;
    // during an outage the retry timer writes; hammering a broken disk per ban would not help
    if (!this.#retryTimer) this.#startWriting();
  }

  #startWriting(): void {
    if (!this.file || this.#writing) return;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#writing = this.#writeLoop().finally(() => {
      this.#writing = null;
      // a flush() that arrived during a failed write tries at once rather than waiting out the backoff
      if (this.#waiters.length > 0) this.#startWriting();
    });
  }

  async #writeLoop(): Promise<void> {
    while (this.#savedVersion < this.#version) {
      const version = this.#version;
      const content = JSON.stringify({ version: FILE_VERSION, bans: this.list() }, null, 2) + '\n';
      try {
        await writeAtomic(this.file!, content);
      } catch (err) {
        this.#failed(version, err as NodeJS.ErrnoException);
        return;
      }
      this.#savedVersion = version;
      this.#settle(version, null);
      if (this.#failures > 0) {
        this.#log?.warn({ file: this.file, failedWrites: this.#failures }, 'ban file written again');
        this.#failures = 0;
        this.#retryDelay = this.#retryMs;
      }
    }
  }

  #failed(version: number, err: NodeJS.ErrnoException): void {
    this.#onWriteFailure();
    if (this.#failures++ === 0) {
      this.#log?.error({ file: this.file, code: err.code, err: err.message }, 'cannot write the ban file; bans stay enforced in memory, retrying with backoff');
    }
    this.#settle(version, err);
    if (this.#closed) return;
    const delay = this.#retryDelay;
    this.#retryDelay = Math.min(this.#maxRetryMs, this.#retryDelay * 2);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#startWriting();
    }, delay);
    this.#retryTimer.unref();
  }

  /** Settle the flush() callers whose changes this write held. */
  #settle(version: number, err: Error | null): void {
    const still: FlushWaiter[] = [];
    for (const w of this.#waiters) {
      if (w.version > version) still.push(w);
      else if (err) w.reject(err);
      else w.resolve();
    }
    this.#waiters = still;
  }
}

function countLength(lengths: Map<number, number>, bits: number, by: number): void {
  const n = (lengths.get(bits) ?? 0) + by;
  if (n > 0) lengths.set(bits, n);
  else lengths.delete(bits);
}

function publicBan(b: BanEntry): Ban {
  const ban: Ban = { subnet: b.subnet, until: b.until, reason: b.reason, created: b.created };
  if (b.automatic) ban.automatic = true;
  return ban;
}

/**
 * parseSubnet, minus the legacy IPv4 forms ipaddr.js accepts: "12345" would be 0.0.48.57 and
 * "10.1" 10.0.0.1. An operator who writes those means something else; refuse them.
 */
export function parseBanSubnet(text: string): Subnet | null {
  const t = text.trim();
  const slash = t.indexOf('/');
  const address = slash < 0 ? t : t.slice(0, slash);
  if (slash >= 0 && !/^\d{1,3}$/.test(t.slice(slash + 1))) return null;
  if (!address.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(address)) return null;
  return parseSubnet(t);
}

/** The entries of a ban file's text; throws, naming the file, when it is not JSON or of an unknown format. */
function banEntries(file: string, text: string): unknown[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`ban file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const entries = banArray(data);
  if (!entries) throw new Error(`ban file ${file} has an unknown format (expected {"version": ${FILE_VERSION}, "bans": [...]} or the output of GET /bans)`);
  return entries;
}

/** The list of entries in what the proxy writes ({version: 1, bans}) or GET /bans prints ({bans}). */
function banArray(data: unknown): unknown[] | null {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return null;
  const d = data as { version?: unknown; bans?: unknown };
  if (d.version !== undefined && d.version !== FILE_VERSION) return null;
  return Array.isArray(d.bans) ? d.bans : null;
}

/** One entry, or what is wrong with it. */
function readEntry(raw: unknown): BanEntry | string {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return 'not an object';
  const e = raw as Record<string, unknown>;
  const text = e.subnet ?? e.address;
  if (typeof text !== 'string') return 'no "subnet" string';
  const parsed = parseBanSubnet(text);
  if (!parsed) return `"subnet" is not an address or CIDR: ${JSON.stringify(text).slice(0, 80)}`;
  const until = readTime(e.until);
  if (until === null) return `"until" is not a time (ms since the epoch or an ISO date): ${preview(e.until)}`;
  const created = e.created === undefined || e.created === null ? 0 : readTime(e.created);
  if (created === null) return `"created" is not a time: ${preview(e.created)}`;
  if (e.reason !== undefined && e.reason !== null && typeof e.reason !== 'string') return '"reason" is not a string';
  const entry: BanEntry = { subnet: parsed.text, until, reason: typeof e.reason === 'string' ? e.reason : '', created, parsed };
  if (e.automatic === true) entry.automatic = true;
  return entry;
}

/** ms since the epoch from a number, a numeric string or an ISO date; null unless within Date's range. */
export function readTime(v: unknown): number | null {
  let ms: number;
  if (typeof v === 'number') ms = v;
  else if (typeof v === 'string' && /^\s*\d+(\.\d+)?(e\+?\d+)?\s*$/i.test(v)) ms = Number(v);
  else if (typeof v === 'string' && /^([+-]\d{6}|\d{4})-\d{2}-\d{2}T/.test(v)) ms = Date.parse(v);
  else return null;
  return Number.isFinite(ms) && ms >= 0 && ms <= MAX_TIME_MS ? Math.round(ms) : null;
}

/** ISO text of a ban time; the reader above guarantees the range, this guards anyway. */
export function isoTime(ms: number): string | null {
  return Number.isFinite(ms) && Math.abs(ms) <= MAX_TIME_MS ? new Date(ms).toISOString() : null;
}

function preview(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}

/** A side-file line without its timestamp, to skip entries already kept by an earlier start. */
function sideKey(line: string): string {
  try {
    const { problem, entry } = JSON.parse(line) as { problem?: unknown; entry?: unknown };
    return JSON.stringify([problem, entry]);
  } catch {
    return line;
  }
}

/**
 * Can the proxy save bans to `file`? null when it can, else one line naming the file and the
 * reason. For the start-up check and the CLI `check` command.
 */
export async function checkBanFileWritable(file: string): Promise<string | null> {
  const problem = await checkWritable(file);
  return problem === null ? null : `bans.file ${file} is not writable: ${problem}`;
}

/**
 * Would load() refuse `file`? null when it would load it (missing is empty; unreadable entries
 * are only set aside), else why, as load() says it. Reads only: for the CLI `check` command.
 */
export async function checkBanFileReadable(file: string): Promise<string | null> {
  try {
    banEntries(file, await fs.readFile(file, 'utf8'));
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? null : (err as Error).message;
  }
}
