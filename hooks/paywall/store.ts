/**
 * The paywall's state behind a small interface (so several proxies can later share it, e.g. in
 * Redis): invoices this proxy issued, the claimed payment hashes with their grant (one grant per
 * hash, ever), credit balances in msat, revoked token ids. FileStore is the default: everything
 * in memory, persisted to one JSON file with atomic writes; a mutation's promise resolves only
 * once it is on disk. Writes coalesce: mutations made while a write runs go out in the next one.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { removeStaleTemporaries, writeAtomic } from '../../src/hooks/index.js';

export type GrantKind = 'pass' | 'credit';

export interface IssuedInvoice {
  paymentHash: string;
  /** 16 random bytes (hex) only the requester saw: a claim must carry them */
  claimToken: string;
  offer: string;
  kind: GrantKind;
  /** the terms sold: the grant keeps them whatever the offers are at claim time (absent in older files) */
  tier?: string;
  durationSeconds?: number;
  amountMsat: bigint;
  /** unix seconds */
  expiresAt: number;
  createdAt: number;
}

export interface GrantRecord {
  paymentHash: string;
  /** hex of the credential's token id (credit: also the balance's id) */
  tokenId: string;
  kind: GrantKind;
  tier: string;
  /** unix seconds; 0 for credit */
  expiresAt: number;
  /** what the claim credited (credit), 0n for a pass */
  creditMsat: bigint;
  /** the signed credential, hex, so it can be delivered again */
  credential: string;
  grantedAt: number;
}

export interface PaywallStore {
  open(): Promise<void>;
  addInvoice(inv: IssuedInvoice): Promise<void>;
  invoice(paymentHash: string): Promise<IssuedInvoice | undefined>;
  /**
   * One grant per payment hash, ever. The first call stores `grant` (and credits its balance)
   * durably and returns it with first=true; every later call returns the stored grant, first=false.
   */
  claim(grant: GrantRecord): Promise<{ grant: GrantRecord; first: boolean }>;
  /** the grant of a claimed payment hash */
  claimed(paymentHash: string): Promise<GrantRecord | undefined>;
  balance(tokenId: string): Promise<bigint | undefined>;
  /** Subtract up to `msat` (never below 0); returns the new balance. */
  debit(tokenId: string, msat: bigint): Promise<bigint>;
  revoke(tokenId: string): Promise<void>;
  isRevoked(tokenId: string): Promise<boolean>;
  grants(): Promise<GrantRecord[]>;
  close(): Promise<void>;
}

const FILE_VERSION = 1;
/** unclaimed invoices are forgotten this long after they expired */
const INVOICE_GRACE_S = 86_400;

type Json<T> = { [K in keyof T]: T[K] extends bigint ? string : T[K] };
const toJson = <T extends object>(o: T): Json<T> => JSON.parse(JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))) as Json<T>;

/** The FileStore of each file in this process (this module is not reloaded with the hook). */
const byFile = new Map<string, FileStore>();

/**
 * The one FileStore of `file`: a reload's new paywall opens it while the old chain's may still
 * be finishing claims, and two stores of one file would each miss, then overwrite, the other's.
 */
export function openFileStore(file: string): FileStore {
  const key = path.resolve(file);
  let s = byFile.get(key);
  if (!s) byFile.set(key, (s = new FileStore(file)));
  return s;
}

export class FileStore implements PaywallStore {
  #invoices = new Map<string, IssuedInvoice>();
  #claims = new Map<string, GrantRecord>();
  #balances = new Map<string, bigint>();
  #revoked = new Set<string>();
  #pending: Promise<void> | null = null;
  #running: Promise<void> = Promise.resolve();
  #opened: Promise<void> | null = null;

  constructor(readonly file: string) {}

  /** Reads the file once; a store already open (shared after a reload) keeps what it holds. */
  open(): Promise<void> {
    this.#opened ??= this.#load().catch((e: unknown) => {
      this.#opened = null; // a file fixed by the operator is read on the next open
      throw e;
    });
    return this.#opened;
  }

  async #load(): Promise<void> {
    await removeStaleTemporaries(this.file);
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    // a corrupt file is refused loudly: starting empty would forget claims and pay out twice
    let d: { version?: unknown; invoices?: Json<IssuedInvoice>[]; claims?: Json<GrantRecord>[]; balances?: Record<string, string>; revoked?: string[] };
    try {
      d = JSON.parse(text) as typeof d;
    } catch (e) {
      throw new Error(`paywall store ${this.file} is not valid JSON (${(e as Error).message}); refusing to start with no record of claims`);
    }
    if (d.version !== FILE_VERSION) throw new Error(`paywall store ${this.file}: unknown version ${String(d.version)}`);
    for (const i of d.invoices ?? []) this.#invoices.set(i.paymentHash, { ...i, amountMsat: BigInt(i.amountMsat) });
    for (const g of d.claims ?? []) this.#claims.set(g.paymentHash, { ...g, creditMsat: BigInt(g.creditMsat) });
    for (const [k, v] of Object.entries(d.balances ?? {})) this.#balances.set(k, BigInt(v));
    for (const t of d.revoked ?? []) this.#revoked.add(t);
  }

  /** Resolves once a write that includes every change made before this call is on disk. */
  #persist(): Promise<void> {
    if (this.#pending) return this.#pending;
    const p = (this.#pending = this.#running
      .catch(() => {})
      .then(() => {
        this.#pending = null; // changes from here on need the next write
        const run = writeAtomic(this.file, this.#serialize());
        this.#running = run;
        return run;
      }));
    return p;
  }

  #serialize(): string {
    const now = Date.now() / 1000;
    for (const [h, i] of this.#invoices) if (i.expiresAt + INVOICE_GRACE_S < now && !this.#claims.has(h)) this.#invoices.delete(h);
    return JSON.stringify({
      version: FILE_VERSION,
      invoices: [...this.#invoices.values()].map(toJson),
      claims: [...this.#claims.values()].map(toJson),
      balances: Object.fromEntries([...this.#balances].map(([k, v]) => [k, v.toString()])),
      revoked: [...this.#revoked],
    });
  }

  async addInvoice(inv: IssuedInvoice): Promise<void> {
    this.#invoices.set(inv.paymentHash, inv);
    await this.#persist();
  }

  async invoice(paymentHash: string): Promise<IssuedInvoice | undefined> {
    return this.#invoices.get(paymentHash);
  }

  async claim(grant: GrantRecord): Promise<{ grant: GrantRecord; first: boolean }> {
    // check and set with no await between: concurrent claims of one hash get one grant
    if (this.#claims.has(grant.paymentHash)) {
      const existing = await this.claimed(grant.paymentHash);
      if (existing) return { grant: existing, first: false };
      return this.claim(grant); // its first write failed and was undone: this one is first
    }
    this.#claims.set(grant.paymentHash, grant);
    if (grant.creditMsat > 0n) this.#balances.set(grant.tokenId, (this.#balances.get(grant.tokenId) ?? 0n) + grant.creditMsat);
    try {
      await this.#persist();
    } catch (e) {
      // not on disk: not acknowledged, so not granted
      this.#claims.delete(grant.paymentHash);
      if (grant.creditMsat > 0n) this.#balances.set(grant.tokenId, (this.#balances.get(grant.tokenId) ?? grant.creditMsat) - grant.creditMsat);
      throw e;
    }
    return { grant, first: true };
  }

  async claimed(paymentHash: string): Promise<GrantRecord | undefined> {
    if (!this.#claims.has(paymentHash)) return undefined;
    // it may still be on its way to disk: answer only once it is there (a failed write removes it)
    await (this.#pending ?? this.#running).catch(() => {});
    return this.#claims.get(paymentHash);
  }

  async balance(tokenId: string): Promise<bigint | undefined> {
    return this.#balances.get(tokenId);
  }

  async debit(tokenId: string, msat: bigint): Promise<bigint> {
    const b = this.#balances.get(tokenId) ?? 0n;
    const next = b > msat ? b - msat : 0n;
    this.#balances.set(tokenId, next);
    await this.#persist();
    return next;
  }

  async revoke(tokenId: string): Promise<void> {
    this.#revoked.add(tokenId);
    await this.#persist();
  }

  async isRevoked(tokenId: string): Promise<boolean> {
    return this.#revoked.has(tokenId);
  }

  async grants(): Promise<GrantRecord[]> {
    return [...this.#claims.values()];
  }

  async close(): Promise<void> {
    await this.#pending;
    await this.#running.catch(() => {});
  }
}
