/**
 * Buying and restoring a tier (docs/x-protocol.md §7.2), with the wallet as the record
 * that keeps money from being spent twice:
 *   1. a purchase paid earlier but not granted (connection lost, seller said `unpaid`) is
 *      claimed again with the same hash, token and preimage, never paid again;
 *   2. the price is checked against the caller's limit before asking for an invoice;
 *   3. the BOLT11 is checked against the offer (invoice-check.ts) before paying;
 *   4. the purchase is on disk as `paying` before the payer runs, `paid` with the preimage after;
 *   5. the grant's credential is stored before returning.
 */
import { createHash } from 'node:crypto';
import { BuyerError } from './errors.js';
import { checkInvoice } from './invoice-check.js';
import { PayerError, type Payer } from './payers/types.js';
import type { GrantAnswer, Offer, OffersAnswer } from './protocol.js';
import type { SellerClient } from './seller.js';
import type { Wallet } from './wallet.js';

export type BuyStep = 'claiming_earlier' | 'invoice' | 'paying' | 'paid' | 'claimed';

export interface BuyOptions {
  offerId: string;
  /** credit: msat to buy (default the smallest purchase); pass: ignored (the price) */
  amountMsat?: bigint;
  /** the most the caller will pay for the offer itself, msat */
  maxMsat: bigint;
  /** the most in routing fees, msat (default 1% of the amount, at least 10 sat) */
  maxFeeMsat?: bigint;
  payer: Payer;
  wallet: Wallet;
  /** the offers already read (saves a round trip) */
  offers?: OffersAnswer;
  progress?: (step: BuyStep, detail: Record<string, unknown>) => void;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();

/** What buying `offer` costs: a pass its price; credit the amount asked (default the minimum), in whole sats. */
export function priceOf(offer: Offer, amountMsat?: bigint): bigint {
  if (offer.kind === 'pass') return offer.priceMsat;
  const a = amountMsat ?? offer.priceMsat;
  if (a < offer.priceMsat || a > offer.maxMsat || a % 1000n !== 0n) throw new BuyerError('price_above_limit', `credit of ${a} msat is outside ${offer.priceMsat}..${offer.maxMsat} msat or not whole sats`);
  return a;
}

/** The most a purchase may spend on routing fees: the caller's limit, else 1% of the amount and at least 10 sat. */
export const feeLimit = (amountMsat: bigint, maxFeeMsat?: bigint): bigint => maxFeeMsat ?? (amountMsat / 100n > 10_000n ? amountMsat / 100n : 10_000n);

export async function buy(s: SellerClient, o: BuyOptions): Promise<GrantAnswer> {
  const progress = o.progress ?? (() => {});
  const earlier = await claimEarlier(s, o.wallet, progress);
  if (earlier) return earlier;

  const offers = o.offers ?? (await s.offers());
  const offer = offers.offers.find((x) => x.id === o.offerId);
  if (!offer) throw new BuyerError('unknown_offer', `the seller has no offer "${o.offerId}" (it has: ${offers.offers.map((x) => x.id).join(', ') || 'none'})`);
  if (offers.currency !== 'BTC') throw new BuyerError('malformed_answer', `offers in currency ${offers.currency}, not BTC`);
  const amountMsat = priceOf(offer, o.amountMsat);
  if (amountMsat > o.maxMsat) throw new BuyerError('price_above_limit', `"${offer.id}" costs ${amountMsat / 1000n} sat (${amountMsat} msat), above the limit of ${o.maxMsat / 1000n} sat`);

  const inv = await s.invoice(offer.id, offer.kind === 'pass' ? 0n : amountMsat);
  const checked = checkInvoice(inv, { amountMsat, lightningNetwork: offers.lightningNetwork });
  // a seller never issues a payment hash twice; a replayed one would be paid again or, refused by
  // the payer, mark the earlier purchase (found by its hash) failed and the budget forget it
  if (o.wallet.purchases().some((p) => p.paymentHash === checked.paymentHash)) throw new BuyerError('invoice_mismatch', `the seller's invoice does not match: its payment hash ${checked.paymentHash} is one this wallet already has (an earlier purchase)`);
  progress('invoice', { paymentHash: checked.paymentHash, amountMsat, expiresAt: checked.expiresAt });

  const maxFeeMsat = feeLimit(amountMsat, o.maxFeeMsat);
  await o.wallet.addPurchase({
    seller: s.seller,
    offerId: offer.id,
    tier: offer.tier,
    paymentHash: checked.paymentHash,
    claimToken: inv.claimToken.toString('hex'),
    amountMsat: amountMsat.toString(),
    feeMsat: maxFeeMsat.toString(), // counted at its most until the payer says
    bolt11: inv.bolt11,
    state: 'paying',
    at: Date.now(),
  });
  progress('paying', { payer: o.payer.kind, amountMsat, maxFeeMsat });
  let preimage: Buffer;
  try {
    const r = await o.payer.pay(inv.bolt11, amountMsat, maxFeeMsat);
    preimage = r.preimage;
    if (!sha256(preimage).equals(inv.paymentHash)) throw new PayerError(o.payer.kind, 'the payer returned a preimage that does not hash to the payment hash', false);
    await o.wallet.setPurchase(checked.paymentHash, { state: 'paid', preimage: preimage.toString('hex'), feeMsat: r.feeMsat.toString() });
  } catch (e) {
    const definite = e instanceof PayerError && e.definite;
    await o.wallet.setPurchase(checked.paymentHash, definite ? { state: 'failed', feeMsat: '0', reason: (e as Error).message } : { reason: (e as Error).message });
    if (definite) throw new BuyerError('payment_failed', `payment failed: ${(e as Error).message}`);
    throw new BuyerError('payment_pending', `the payment's outcome is unknown: ${(e as Error).message}`);
  }
  progress('paid', { paymentHash: checked.paymentHash });
  return claimAndStore(s, o.wallet, checked.paymentHash, inv.claimToken, preimage, progress);
}

/** Claim a purchase this wallet paid for (or may have) but holds no grant for yet. */
async function claimEarlier(s: SellerClient, wallet: Wallet, progress: (step: BuyStep, d: Record<string, unknown>) => void): Promise<GrantAnswer | null> {
  const p = wallet.unclaimed(s.seller);
  if (!p) return null;
  if (p.state === 'paying' || !p.preimage) throw new BuyerError('payment_pending', `an earlier payment to this seller (${p.paymentHash}) has an unknown outcome; settle it with the payer, then record its preimage`);
  progress('claiming_earlier', { paymentHash: p.paymentHash });
  return claimAndStore(s, wallet, p.paymentHash, Buffer.from(p.claimToken, 'hex'), Buffer.from(p.preimage, 'hex'), progress);
}

/** Refusals after which claiming again cannot succeed (the others: try again later). */
const FINAL = new Set(['not_issued', 'not_yours', 'bad_preimage', 'underpaid', 'invoice_expired', 'credential_revoked', 'malformed']);

async function claimAndStore(s: SellerClient, wallet: Wallet, hash: string, token: Buffer, preimage: Buffer, progress: (step: BuyStep, d: Record<string, unknown>) => void): Promise<GrantAnswer> {
  let g: GrantAnswer;
  try {
    g = await s.claim(Buffer.from(hash, 'hex'), token, preimage);
  } catch (e) {
    if (e instanceof BuyerError && e.code === 'claim_refused') await wallet.setPurchase(hash, { reason: e.message, ...(FINAL.has(e.reason ?? '') ? { state: 'refused' as const } : {}) });
    throw e;
  }
  await storeGrant(wallet, s.seller, g, hash);
  await wallet.setPurchase(hash, { state: 'claimed' });
  progress('claimed', { tier: g.tier, kind: g.kind, expiresAt: g.expiresAt, balanceMsat: g.balanceMsat });
  return g;
}

export function storeGrant(wallet: Wallet, seller: string, g: GrantAnswer, paymentHash: string): Promise<void> {
  return wallet.addCredential(seller, {
    kind: g.kind,
    tier: g.tier,
    expiresAt: Number(g.expiresAt),
    credential: g.credential.toString('hex'),
    paymentHash,
    obtainedAt: Math.floor(Date.now() / 1000),
    ...(g.kind === 'credit' ? { balanceMsat: g.balanceMsat.toString() } : {}),
  });
}

/** Refusals that mean the credential will never work again. */
const DEAD = new Set(['credential_invalid', 'credential_unknown_key', 'credential_expired', 'credential_revoked']);

/**
 * Present the newest usable credential for this seller (x:auth). Returns the grant, or null when
 * the wallet has none that works; credentials refused for good are dropped from the wallet.
 */
export async function presentCredential(s: SellerClient, wallet: Wallet): Promise<GrantAnswer | null> {
  for (;;) {
    const c = wallet.usableCredential(s.seller);
    if (!c) return null;
    try {
      const g = await s.auth(Buffer.from(c.credential, 'hex'));
      if (g.kind === 'credit') await wallet.addCredential(s.seller, { ...c, balanceMsat: g.balanceMsat.toString() });
      return g;
    } catch (e) {
      if (e instanceof BuyerError && DEAD.has(e.reason ?? '')) {
        await wallet.dropCredential(s.seller, c.credential);
        continue;
      }
      if (e instanceof BuyerError && e.reason === 'balance_empty') return null;
      throw e;
    }
  }
}
