/**
 * The paywall's x: messages (docs/x-protocol.md §4.3): encoders and decoders for both sides,
 * so the buyer's client (issue 11) can reuse them. Every request starts with a u64 nonce that
 * the answer (or x:refuse) echoes. Readers ignore trailing bytes (the format grows at the end).
 */
import { codec } from '../../src/hooks/index.js';

export const CMD = {
  offers: 'x:offers',
  invoice: 'x:invoice',
  claim: 'x:claim',
  grant: 'x:grant',
  auth: 'x:auth',
  balance: 'x:balance',
  refuse: 'x:refuse',
} as const;

export const OFFERS_VERSION = 1;

/** x:refuse reason codes (u16). */
export const REFUSE = {
  malformed: 1,
  unknown_offer: 2,
  bad_amount: 3,
  too_many_invoices: 4,
  rate_limited: 5,
  backend_unavailable: 6,
  not_issued: 7,
  not_yours: 8,
  bad_preimage: 9,
  unpaid: 10,
  underpaid: 11,
  invoice_expired: 12,
  credential_invalid: 13,
  credential_unknown_key: 14,
  credential_expired: 15,
  credential_revoked: 16,
  busy: 17,
  internal: 18,
  balance_empty: 19,
} as const;
export type RefuseReason = keyof typeof REFUSE;
const REASON_BY_CODE = new Map<number, RefuseReason>(Object.entries(REFUSE).map(([k, v]) => [v, k as RefuseReason]));
export const refuseReason = (code: number): RefuseReason | 'unknown' => REASON_BY_CODE.get(code) ?? 'unknown';

export const KIND = { free: 0, pass: 1, credit: 2 } as const;
export type OfferKind = 'pass' | 'credit';

/** Grant flags. */
export const GRANT_REDELIVERED = 0x01;
export const GRANT_FROM_AUTH = 0x02;

/** ids and tier names: 1 to 32 printable ASCII characters */
const ID_MAX = 32;

export interface Offer {
  id: string;
  kind: OfferKind;
  /** tier name a grant sets */
  tier: string;
  /** pass: the price; credit: the smallest purchase */
  priceMsat: bigint;
  /** pass: seconds the pass lasts; credit: 0 */
  durationSeconds: bigint;
  /** credit: the largest purchase; pass: 0 */
  maxMsat: bigint;
  /** credit: msat debited per whole unit relayed beyond the free bytes; pass: 0 */
  msatPerUnit: bigint;
  /** credit: bytes per unit; pass: 0 */
  unitBytes: bigint;
  /** credit: bytes per connection not charged; pass: 0 */
  freeBytes: bigint;
}

export interface OffersAnswer {
  nonce: bigint;
  version: number;
  /** BOLT11 network of the invoices: bitcoin, testnet, signet, regtest */
  lightningNetwork: string;
  /** unit of every amount: msat of this currency */
  currency: string;
  offers: Offer[];
  /** commands refused to peers without a paid tier */
  paidOnly: string[];
  /** bytes of blocks per UTC day served to free peers in all; 0 = no limit */
  freeDailyUploadBytes: bigint;
}

export interface InvoiceRequest {
  nonce: bigint;
  offerId: string;
  /** credit: the amount to buy; pass: 0 (the price) */
  amountMsat: bigint;
}

export interface InvoiceAnswer {
  nonce: bigint;
  paymentHash: Buffer;
  claimToken: Buffer;
  amountMsat: bigint;
  expiresAt: bigint;
  bolt11: string;
}

export interface ClaimRequest {
  nonce: bigint;
  paymentHash: Buffer;
  claimToken: Buffer;
  preimage: Buffer;
}

export interface GrantAnswer {
  nonce: bigint;
  flags: number;
  kind: OfferKind;
  tier: string;
  /** pass: unix seconds; credit: 0 */
  expiresAt: bigint;
  /** credit: the balance now; pass: 0 */
  balanceMsat: bigint;
  credential: Buffer;
}

export interface AuthRequest {
  nonce: bigint;
  credential: Buffer;
}

export interface BalanceAnswer {
  nonce: bigint;
  kind: 'free' | OfferKind;
  /** '' when free */
  tier: string;
  expiresAt: bigint;
  balanceMsat: bigint;
  /** bytes charged on this connection so far */
  chargedBytes: bigint;
  /** bytes this connection may still receive before charging starts */
  freeBytesLeft: bigint;
}

export interface RefuseAnswer {
  nonce: bigint;
  /** the request this refuses, e.g. x:claim */
  command: string;
  code: number;
  message: string;
}

const W = (n = 64) => new codec.PayloadWriter(n);
const R = (b: Buffer, command: string) => new codec.PayloadReader(b, command);
const kindByte = (k: 'free' | OfferKind) => KIND[k];
function kindOf(r: codec.PayloadReader, allowFree: boolean): 'free' | OfferKind {
  const k = r.u8('kind');
  if (k === KIND.pass) return 'pass';
  if (k === KIND.credit) return 'credit';
  if (k === KIND.free && allowFree) return 'free';
  return r.fail('INVALID', `unknown kind ${k}`);
}
function id(r: codec.PayloadReader, what: string): string {
  const s = r.varString(what, ID_MAX);
  if (!/^[\x20-\x7e]*$/.test(s)) r.fail('INVALID', `${what} is not printable ASCII`);
  return s;
}

/** x:offers, x:balance and other requests that are a nonce only. */
export const encodeNonce = (nonce: bigint): Buffer => W(8).u64(nonce).finish();
export const decodeNonce = (b: Buffer, command: string): bigint => R(b, command).u64('nonce');

export function encodeOffers(a: OffersAnswer): Buffer {
  const w = W(128).u64(a.nonce).u8(OFFERS_VERSION).varString(a.lightningNetwork).varString(a.currency).compactSize(a.offers.length);
  for (const o of a.offers) w.varString(o.id).u8(kindByte(o.kind)).varString(o.tier).u64(o.priceMsat).u64(o.durationSeconds).u64(o.maxMsat).u64(o.msatPerUnit).u64(o.unitBytes).u64(o.freeBytes);
  w.compactSize(a.paidOnly.length);
  for (const c of a.paidOnly) w.varString(c);
  return w.u64(a.freeDailyUploadBytes).finish();
}

export function decodeOffers(b: Buffer): OffersAnswer {
  const r = R(b, CMD.offers);
  const nonce = r.u64('nonce');
  const version = r.u8('offers_version');
  const a: OffersAnswer = { nonce, version, lightningNetwork: '', currency: '', offers: [], paidOnly: [], freeDailyUploadBytes: 0n };
  if (version !== OFFERS_VERSION) return a;
  a.lightningNetwork = id(r, 'lightning_network');
  a.currency = id(r, 'currency');
  const n = r.compactSize('offer_count', 1000);
  for (let i = 0; i < n; i++) {
    a.offers.push({
      id: id(r, 'offer_id'),
      kind: kindOf(r, false) as OfferKind,
      tier: id(r, 'tier'),
      priceMsat: r.u64('price_msat'),
      durationSeconds: r.u64('duration'),
      maxMsat: r.u64('max_msat'),
      msatPerUnit: r.u64('msat_per_unit'),
      unitBytes: r.u64('unit_bytes'),
      freeBytes: r.u64('free_bytes'),
    });
  }
  const p = r.compactSize('paid_only_count', 1000);
  for (let i = 0; i < p; i++) a.paidOnly.push(r.varString('command', 12));
  a.freeDailyUploadBytes = r.u64('free_daily_upload');
  return a;
}

export const encodeInvoiceRequest = (q: InvoiceRequest): Buffer => W().u64(q.nonce).varString(q.offerId).u64(q.amountMsat).finish();
export function decodeInvoiceRequest(b: Buffer): InvoiceRequest {
  const r = R(b, CMD.invoice);
  return { nonce: r.u64('nonce'), offerId: id(r, 'offer_id'), amountMsat: r.u64('amount_msat') };
}

export const encodeInvoiceAnswer = (a: InvoiceAnswer): Buffer =>
  W(200 + a.bolt11.length).u64(a.nonce).bytes(a.paymentHash).bytes(a.claimToken).u64(a.amountMsat).u64(a.expiresAt).varString(a.bolt11).finish();
export function decodeInvoiceAnswer(b: Buffer): InvoiceAnswer {
  const r = R(b, CMD.invoice);
  return {
    nonce: r.u64('nonce'),
    paymentHash: Buffer.from(r.bytes(32, 'payment_hash')),
    claimToken: Buffer.from(r.bytes(16, 'claim_token')),
    amountMsat: r.u64('amount_msat'),
    expiresAt: r.u64('expires_at'),
    bolt11: r.varString('bolt11', 4096),
  };
}

export const encodeClaim = (c: ClaimRequest): Buffer => W(88).u64(c.nonce).bytes(c.paymentHash).bytes(c.claimToken).bytes(c.preimage).finish();
export function decodeClaim(b: Buffer): ClaimRequest {
  const r = R(b, CMD.claim);
  return { nonce: r.u64('nonce'), paymentHash: Buffer.from(r.bytes(32, 'payment_hash')), claimToken: Buffer.from(r.bytes(16, 'claim_token')), preimage: Buffer.from(r.bytes(32, 'preimage')) };
}

export const encodeGrant = (g: GrantAnswer): Buffer =>
  W(160).u64(g.nonce).u8(g.flags).u8(kindByte(g.kind)).varString(g.tier).u64(g.expiresAt).u64(g.balanceMsat).varBytes(g.credential).finish();
export function decodeGrant(b: Buffer): GrantAnswer {
  const r = R(b, CMD.grant);
  return {
    nonce: r.u64('nonce'),
    flags: r.u8('flags'),
    kind: kindOf(r, false) as OfferKind,
    tier: id(r, 'tier'),
    expiresAt: r.u64('expires_at'),
    balanceMsat: r.u64('balance_msat'),
    credential: Buffer.from(r.varBytes('credential', 512)),
  };
}

export const encodeAuth = (a: AuthRequest): Buffer => W(140).u64(a.nonce).varBytes(a.credential).finish();
export function decodeAuth(b: Buffer): AuthRequest {
  const r = R(b, CMD.auth);
  return { nonce: r.u64('nonce'), credential: Buffer.from(r.varBytes('credential', 512)) };
}

export const encodeBalance = (a: BalanceAnswer): Buffer =>
  W(80).u64(a.nonce).u8(kindByte(a.kind)).varString(a.tier).u64(a.expiresAt).u64(a.balanceMsat).u64(a.chargedBytes).u64(a.freeBytesLeft).finish();
export function decodeBalance(b: Buffer): BalanceAnswer {
  const r = R(b, CMD.balance);
  return { nonce: r.u64('nonce'), kind: kindOf(r, true), tier: id(r, 'tier'), expiresAt: r.u64('expires_at'), balanceMsat: r.u64('balance_msat'), chargedBytes: r.u64('charged_bytes'), freeBytesLeft: r.u64('free_bytes_left') };
}

export const encodeRefuse = (a: RefuseAnswer): Buffer => W(32 + a.message.length).u64(a.nonce).varString(a.command).u8(a.code & 0xff).u8(a.code >>> 8).varString(a.message).finish();
export function decodeRefuse(b: Buffer): RefuseAnswer {
  const r = R(b, CMD.refuse);
  return { nonce: r.u64('nonce'), command: r.varString('command', 12), code: r.u8('code') | (r.u8('code') << 8), message: r.varString('message', 1024) };
}
