/**
 * The paywall's state behind a small interface (so several proxies can share it, e.g. in
 * Redis): invoices this proxy issued, the claimed payment hashes with their grant (one grant per
 * hash, ever), credit balances in msat, revoked token ids. FileStore is the default: everything
 * in memory; a mutation's promise resolves only once it is on disk. Claims, balances and
 * revocations (a record per paying customer) are one JSON file, replaced atomically; writes
 * coalesce. Invoices (one per request, paid or not: many more) go to an append-only journal
 * beside it, so issuing one costs an append, not a rewrite of everything issued before.
 */
import path from 'node:path';
import { appendDurable, readIfExists, removeStaleTemporaries, writeAtomic } from '../../src/hooks/index.js';

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
  /** the backend said it was paid after it expired unclaimed: kept until it is claimed */
  paid?: true;
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
  /** The invoice expired paid but unclaimed: keep it until it is claimed. */
  keepPaid(paymentHash: string): Promise<void>;
  /** The invoice expired unpaid (the backend said so): forget it. */
  forgetInvoice(paymentHash: string): Promise<void>;
  /**
   * Unclaimed invoices not yet found paid, for the paywall to ask the backend about once they
   * expire (after a restart too). A store that cannot list them answers none and forgets them
   * on its own a grace period after they expire.
   */
  unsettled(): Promise<IssuedInvoice[]>;
  close(): Promise<void>;
}

const FILE_VERSION = 1;
/** rewrite the journal once it holds this many more lines than live invoices */
const COMPACT_SLACK = 1000;

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

type JournalLine = ({ op: 'add' } & Json<IssuedInvoice>) | { op: 'paid' | 'forget'; paymentHash: string };

export class FileStore implements PaywallStore {
  #invoices = new Map<string, IssuedInvoice>();
  #claims = new Map<string, GrantRecord>();
  #balances = new Map<string, bigint>();
  #revoked = new Set<string>();
  /** the main file's writes */
  readonly #main = new CoalescedWrites(() => writeAtomic(this.file, this.#serialize()));
  #opened: Promise<void> | null = null;
  /** the invoice journal: lines waiting for the next append, lines in the file */
  readonly journal: string;
  #journalQueue: string[] = [];
  #journalLines = 0;
  /** rewrite the journal whole next time: it is missing, holds a torn line, or an append failed */
  #compact = false;
  readonly #journalWrites = new CoalescedWrites(() => this.#writeJournal());

  constructor(readonly file: string) {
    this.journal = `${file}.invoices`;
  }

  /** Reads the files once; a store already open (shared after a reload) keeps what it holds. */
  open(): Promise<void> {
    this.#opened ??= this.#load().catch((e: unknown) => {
      this.#opened = null; // a file fixed by the operator is read on the next open
      throw e;
    });
    return this.#opened;
  }

  async #load(): Promise<void> {
    await removeStaleTemporaries(this.file);
    await removeStaleTemporaries(this.journal);
    const text = await readIfExists(this.file);
    let legacyInvoices = false;
    if (text !== null) {
      // a corrupt file is refused loudly: starting empty would forget claims and pay out twice
      let d: { version?: unknown; invoices?: Json<IssuedInvoice>[]; claims?: Json<GrantRecord>[]; balances?: Record<string, string>; revoked?: string[] };
      try {
        d = JSON.parse(text) as typeof d;
      } catch (e) {
        throw new Error(`paywall store ${this.file} is not valid JSON (${(e as Error).message}); refusing to start with no record of claims`);
      }
      if (d.version !== FILE_VERSION) throw new Error(`paywall store ${this.file}: unknown version ${String(d.version)}`);
      // invoices lived in this file before the journal: they move there at once, below
      for (const i of d.invoices ?? []) this.#invoices.set(i.paymentHash, invoiceFromJson(i));
      legacyInvoices = (d.invoices ?? []).length > 0;
      for (const g of d.claims ?? []) this.#claims.set(g.paymentHash, { ...g, creditMsat: BigInt(g.creditMsat) });
      for (const [k, v] of Object.entries(d.balances ?? {})) this.#balances.set(k, BigInt(v));
      for (const t of d.revoked ?? []) this.#revoked.add(t);
    }
    this.#readJournal(await readIfExists(this.journal));
    // before the main file is rewritten without them. Whole, not an (empty) append: a journal may
    // exist already (a rollback to the version before it wrote invoices to the main file only)
    if (legacyInvoices) {
      this.#compact = true;
      await this.#journalWrites.request();
    }
  }

  #readJournal(text: string | null): void {
    if (text === null) {
      this.#compact = true; // made with writeAtomic, so that its directory entry is durable
      return;
    }
    const lines = text.split('\n');
    const last = lines.pop(); // '' after the final newline, else a line cut short by a crash
    if (last) {
      this.#compact = true; // rewritten whole, so no append goes after it
      // A whole JSON object is a line saved without its newline (editors do that), kept: it may
      // be the only record of a paid invoice; and one whose append was never acknowledged
      // changes nothing paid (an invoice never handed out, or one forgotten or kept as the
      // backend said). Anything else was cut short by a crash: dropped.
      if (isJsonObject(last)) lines.push(last);
    }
    lines.forEach((line, n) => {
      if (!line) return;
      let l: JournalLine;
      try {
        l = JSON.parse(line) as JournalLine;
      } catch (e) {
        throw new Error(`paywall invoice journal ${this.journal}: line ${n + 1} is not valid JSON (${(e as Error).message}); refusing to start with invoices missing`);
      }
      this.#journalLines++;
      if (l.op === 'add') {
        const { op: _op, ...inv } = l;
        this.#invoices.set(inv.paymentHash, invoiceFromJson(inv));
      } else if (l.op === 'paid') {
        const inv = this.#invoices.get(l.paymentHash);
        if (inv) inv.paid = true;
      } else if (l.op === 'forget') this.#invoices.delete(l.paymentHash);
    });
  }

  /** Resolves once a write that includes every change made before this call is on disk. */
  #persist(): Promise<void> {
    return this.#main.request();
  }

  #serialize(): string {
    return JSON.stringify({
      version: FILE_VERSION,
      claims: [...this.#claims.values()].map(toJson),
      balances: Object.fromEntries([...this.#balances].map(([k, v]) => [k, v.toString()])),
      revoked: [...this.#revoked],
    });
  }

  /** Append `line` to the journal; resolves once it is fsynced (appends made meanwhile share one write). */
  #journalAppend(line: JournalLine): Promise<void> {
    this.#journalQueue.push(JSON.stringify(line, bigintAsString) + '\n');
    return this.#journalWrites.request();
  }

  /** The lines queued so far as one append, or the live invoices as a new file when it is due. */
  #writeJournal(): Promise<void> {
    const lines = this.#journalQueue;
    this.#journalQueue = [];
    return this.#compact || this.#journalLines + lines.length > 2 * this.#invoices.size + COMPACT_SLACK ? this.#rewriteJournal() : this.#appendLines(lines);
  }

  async #appendLines(lines: string[]): Promise<void> {
    try {
      await appendDurable(this.journal, lines.join(''));
    } catch (e) {
      this.#compact = true; // part of it may be there, torn: the next write replaces the file
      throw e;
    }
    this.#journalLines += lines.length;
  }

  /** The live invoices only (what memory holds, queued lines included), replacing the file atomically. */
  async #rewriteJournal(): Promise<void> {
    const invoices = [...this.#invoices.values()];
    await writeAtomic(this.journal, invoices.map((i) => JSON.stringify({ op: 'add', ...i }, bigintAsString) + '\n').join(''));
    this.#journalLines = invoices.length;
    this.#compact = false;
  }

  async addInvoice(inv: IssuedInvoice): Promise<void> {
    this.#invoices.set(inv.paymentHash, inv);
    try {
      await this.#journalAppend({ op: 'add', ...toJson(inv) });
    } catch (e) {
      this.#invoices.delete(inv.paymentHash); // not on disk: not issued
      throw e;
    }
  }

  async invoice(paymentHash: string): Promise<IssuedInvoice | undefined> {
    return this.#invoices.get(paymentHash);
  }

  async keepPaid(paymentHash: string): Promise<void> {
    const inv = this.#invoices.get(paymentHash);
    if (!inv || inv.paid) return;
    inv.paid = true;
    await this.#journalAppend({ op: 'paid', paymentHash });
  }

  async forgetInvoice(paymentHash: string): Promise<void> {
    if (this.#claims.has(paymentHash) || !this.#invoices.delete(paymentHash)) return;
    await this.#journalAppend({ op: 'forget', paymentHash });
  }

  async unsettled(): Promise<IssuedInvoice[]> {
    return [...this.#invoices.values()].filter((i) => !i.paid && !this.#claims.has(i.paymentHash));
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
    await this.#main.current.catch(() => {});
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
    await this.#main.drain();
    await this.#journalWrites.drain();
  }
}

/**
 * Writes that coalesce: a request made while a write runs is served by the next one, which
 * every request made meanwhile shares. Each request resolves once a write that began after it
 * ended (and rejects with its error).
 */
class CoalescedWrites {
  #pending: Promise<void> | null = null;
  #running: Promise<void> = Promise.resolve();

  constructor(private readonly write: () => Promise<void>) {}

  request(): Promise<void> {
    if (this.#pending) return this.#pending;
    const p = (this.#pending = this.#running
      .catch(() => {})
      .then(() => {
        this.#pending = null; // changes from here on need the next write
        return (this.#running = this.write());
      }));
    return p;
  }

  /** the write waiting, else the one running (or the last one) */
  get current(): Promise<void> {
    return this.#pending ?? this.#running;
  }

  /** Wait for the write waiting (its failure is thrown) and the one running. */
  async drain(): Promise<void> {
    await this.#pending;
    await this.#running.catch(() => {});
  }
}

const bigintAsString = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);

function invoiceFromJson(i: Json<IssuedInvoice>): IssuedInvoice {
  return { ...i, amountMsat: BigInt(i.amountMsat) } as IssuedInvoice;
}

function isJsonObject(text: string): boolean {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null;
  } catch {
    return false;
  }
}

