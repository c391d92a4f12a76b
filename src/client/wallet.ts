/**
 * The buyer's wallet file: credentials keyed by seller, and every purchase with its state, so
 * that a payment is never made twice and the budget counts what was spent. JSON, mode 0600
 * (credentials are bearer secrets), replaced atomically (temp file, fsync, rename, fsync dir):
 * a purchase is on disk as `paying` before the payer is called, as `paid` with its preimage
 * before the claim, and its credential before buy() returns. Amounts are msat as decimal strings.
 *
 * The seller's identity is the address the buyer reached it at (`host:port`, lowercased, an
 * IPv6 host in brackets): the x: protocol gives a seller no key of its own.
 */
import { readFileSync } from 'node:fs';
import { writeAtomic } from '../hooks/atomic-file.js';

export interface StoredCredential {
  kind: 'pass' | 'credit';
  tier: string;
  /** pass: unix seconds when it ends; credit: 0 */
  expiresAt: number;
  /** the opaque credential, hex */
  credential: string;
  paymentHash: string;
  obtainedAt: number;
  /** credit: the balance last reported, msat */
  balanceMsat?: string;
}

/** paying: the payer was called (outcome unknown until recorded); paid: the preimage is known, not yet granted. */
export type PurchaseState = 'paying' | 'paid' | 'claimed' | 'failed' | 'refused';

export interface Purchase {
  seller: string;
  offerId: string;
  tier: string;
  paymentHash: string;
  claimToken: string;
  amountMsat: string;
  feeMsat: string;
  bolt11: string;
  state: PurchaseState;
  preimage?: string;
  /** ms since the epoch when it was started */
  at: number;
  /** the last refusal or failure */
  reason?: string;
}

interface WalletData {
  version: 1;
  credentials: Record<string, StoredCredential[]>;
  purchases: Purchase[];
}

const empty = (): WalletData => ({ version: 1, credentials: {}, purchases: [] });

/** `host:port`, an IPv6 host in brackets: parseable again, and the form the SOCKS front names a destination in. */
export function sellerId(host: string, port: number): string {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

export class Wallet {
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly file: string) {}

  /** Open (or start) a wallet file; a file that is not a wallet is an error, never overwritten. */
  static open(file: string): Wallet {
    read(file);
    return new Wallet(file);
  }

  /** The file as it is now: another process (the CLI, the proxy) may have written it. */
  #now(): WalletData {
    return read(this.file);
  }

  credentials(): Record<string, readonly StoredCredential[]> {
    return this.#now().credentials;
  }

  /** A credential for `seller` that may still work: a pass not yet ended, or credit. Newest first. */
  usableCredential(seller: string, nowS = Math.floor(Date.now() / 1000)): StoredCredential | undefined {
    const list = this.#now().credentials[seller] ?? [];
    return [...list].reverse().find((c) => c.kind === 'credit' || c.expiresAt > nowS);
  }

  purchases(): readonly Purchase[] {
    return this.#now().purchases;
  }

  /** A purchase paid (or whose payment's outcome is unknown) but not granted yet. */
  unclaimed(seller: string): Purchase | undefined {
    return this.#now().purchases.find((p) => p.seller === seller && (p.state === 'paid' || p.state === 'paying'));
  }

  /** msat spent (amount and fees) since `sinceMs`, counting every purchase that may have been paid. */
  spentMsat(sinceMs = 0): bigint {
    let sum = 0n;
    for (const p of this.#now().purchases) if (p.state !== 'failed' && p.at >= sinceMs) sum += BigInt(p.amountMsat) + BigInt(p.feeMsat);
    return sum;
  }

  /** Apply `change` to the file's current content and write it durably (one at a time in this process). */
  update(change: (d: WalletData) => void): Promise<void> {
    const run = async () => {
      const d = read(this.file);
      change(d);
      await writeAtomic(this.file, `${JSON.stringify(d, null, 2)}\n`, 0o600);
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  addPurchase(p: Purchase): Promise<void> {
    return this.update((d) => void d.purchases.push(p));
  }

  setPurchase(paymentHash: string, change: Partial<Purchase>): Promise<void> {
    return this.update((d) => {
      const p = d.purchases.find((x) => x.paymentHash === paymentHash);
      if (p) Object.assign(p, change);
    });
  }

  addCredential(seller: string, c: StoredCredential): Promise<void> {
    return this.update((d) => {
      const list = (d.credentials[seller] ??= []);
      const i = list.findIndex((x) => x.credential === c.credential);
      if (i >= 0) list[i] = c;
      else list.push(c);
    });
  }

  /** Forget a credential the seller refused for good (expired, revoked, unknown key, forged). */
  dropCredential(seller: string, credential: string): Promise<void> {
    return this.update((d) => {
      const list = d.credentials[seller];
      if (list) d.credentials[seller] = list.filter((x) => x.credential !== credential);
    });
  }
}

function read(file: string): WalletData {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return empty();
    throw e;
  }
  let d: unknown;
  try {
    d = JSON.parse(text);
  } catch (e) {
    throw new Error(`wallet ${file}: not JSON (${(e as Error).message}); refusing to touch it`);
  }
  const w = d as Partial<WalletData>;
  if (w?.version !== 1 || typeof w.credentials !== 'object' || !Array.isArray(w.purchases)) throw new Error(`wallet ${file}: not a bitcoin-hook-proxy wallet (version 1); refusing to touch it`);
  return w as WalletData;
}
