/**
 * The paywall's state in the proxy's shared store (ctx.store backed by Redis), so every proxy
 * of a fleet honours the same invoices, claims, balances and revocations:
 *   inv:<hash>   issued invoice (JSON), expires a day after the invoice unless claimed or found paid
 *   claim:<hash> the one grant of a payment hash, taken with SET NX: a second proxy gets the first's grant
 *   bal:<token>  credit balance in msat, debited atomically and never below zero
 *   rev:<token>  revoked
 * While the store is unreachable every call rejects with StoreUnavailableError: a claim is then
 * refused with a retry code, never granted on local guesswork.
 */
import type { HookStore } from '../../src/hooks/index.js';
import type { GrantRecord, IssuedInvoice, PaywallStore } from './store.js';

/** unclaimed invoices are forgotten this long after they expired (as FileStore does) */
const INVOICE_GRACE_S = 86_400;

const toJson = (o: object): string => JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

export class SharedPaywallStore implements PaywallStore {
  /** grants claimed through this proxy since it started: the shared store has no listing */
  readonly #seen = new Map<string, GrantRecord>();

  constructor(readonly kv: HookStore) {}

  async open(): Promise<void> {}

  async addInvoice(inv: IssuedInvoice): Promise<void> {
    const ttlSeconds = Math.max(1, inv.expiresAt + INVOICE_GRACE_S - Math.floor(Date.now() / 1000));
    await this.kv.set(`inv:${inv.paymentHash}`, toJson(inv), { ttlSeconds });
  }

  async invoice(paymentHash: string): Promise<IssuedInvoice | undefined> {
    const text = await this.kv.get(`inv:${paymentHash}`);
    if (text === null) return undefined;
    const i = JSON.parse(text) as IssuedInvoice & { amountMsat: string };
    return { ...i, amountMsat: BigInt(i.amountMsat) };
  }

  async keepPaid(paymentHash: string): Promise<void> {
    const inv = await this.invoice(paymentHash);
    if (inv && !inv.paid) await this.kv.set(`inv:${paymentHash}`, toJson({ ...inv, paid: true })); // no time to live: kept until claimed
  }

  async forgetInvoice(paymentHash: string): Promise<void> {
    if ((await this.kv.get(`claim:${paymentHash}`)) === null) await this.kv.delete(`inv:${paymentHash}`);
  }

  /** Redis has no listing here: invoices issued before a restart are forgotten by their time to live. */
  async unsettled(): Promise<IssuedInvoice[]> {
    return [];
  }

  async claim(grant: GrantRecord): Promise<{ grant: GrantRecord; first: boolean }> {
    // The invoice loses its time to live first, as the file store keeps claimed invoices: a
    // claim retried after the grant was lost (the connection dropped, the proxy died) needs it
    // to check the claim token, and its one-day fallback would have refused it as not issued.
    const inv = await this.invoice(grant.paymentHash);
    if (inv) await this.kv.set(`inv:${grant.paymentHash}`, toJson(inv));
    // The balance goes in first under the grant's fresh token id, which nobody holds until the
    // claim below wins; so a crash between the two leaves an unreachable balance, never a paid
    // claim without its credit.
    const credit = grant.creditMsat > 0n;
    if (credit) await this.kv.setNX(`bal:${grant.tokenId}`, grant.creditMsat.toString());
    if (await this.kv.setNX(`claim:${grant.paymentHash}`, toJson(grant))) {
      this.#seen.set(grant.paymentHash, grant);
      return { grant, first: true };
    }
    if (credit) await this.kv.delete(`bal:${grant.tokenId}`);
    const existing = await this.claimed(grant.paymentHash);
    if (!existing) throw new Error(`payment hash ${grant.paymentHash}: claimed, but the claim is unreadable`);
    return { grant: existing, first: false };
  }

  async claimed(paymentHash: string): Promise<GrantRecord | undefined> {
    const text = await this.kv.get(`claim:${paymentHash}`);
    if (text === null) return undefined;
    const g = JSON.parse(text) as GrantRecord & { creditMsat: string };
    return { ...g, creditMsat: BigInt(g.creditMsat) };
  }

  async balance(tokenId: string): Promise<bigint | undefined> {
    const text = await this.kv.get(`bal:${tokenId}`);
    return text === null ? undefined : BigInt(text);
  }

  debit(tokenId: string, msat: bigint): Promise<bigint> {
    return this.kv.incrBy(`bal:${tokenId}`, -msat, { floor: 0n });
  }

  async revoke(tokenId: string): Promise<void> {
    await this.kv.set(`rev:${tokenId}`, '1');
  }

  async isRevoked(tokenId: string): Promise<boolean> {
    return (await this.kv.get(`rev:${tokenId}`)) !== null;
  }

  async grants(): Promise<GrantRecord[]> {
    return [...this.#seen.values()];
  }

  async close(): Promise<void> {}
}
