/**
 * A buyer's client of the paywall's x: messages written from docs/x-protocol.md §4.3 alone
 * (not from hooks/paywall/protocol.ts): its layouts are parsed here with a plain PayloadReader,
 * so a disagreement between the document and the hook fails the tests. Discovery and framing
 * come from the x: protocol test client (test/hooks/x-protocol-client.ts).
 */
import { PayloadReader, PayloadWriter, type Frame } from '../../../src/codec/index.js';
import { XClient, type XClientOptions } from '../x-protocol-client.js';
import { waitFor } from '../../support/wait.js';

export interface DocOffer {
  id: string;
  kind: number;
  tier: string;
  priceMsat: bigint;
  duration: bigint;
  maxMsat: bigint;
  msatPerUnit: bigint;
  unitBytes: bigint;
  freeBytes: bigint;
}
export interface DocOffers {
  network: string;
  currency: string;
  offers: DocOffer[];
  paidOnly: string[];
  freeDailyUpload: bigint;
}
export interface DocInvoice {
  paymentHash: Buffer;
  claimToken: Buffer;
  amountMsat: bigint;
  expiresAt: bigint;
  bolt11: string;
}
export interface DocGrant {
  flags: number;
  kind: number;
  tier: string;
  expiresAt: bigint;
  balanceMsat: bigint;
  credential: Buffer;
}
export interface DocBalance {
  nonce: bigint;
  kind: number;
  tier: string;
  expiresAt: bigint;
  balanceMsat: bigint;
  chargedBytes: bigint;
  freeBytesLeft: bigint;
}
export interface DocRefuse {
  command: string;
  code: number;
  message: string;
}

/** Section 2, reason codes. */
export const CODES = {
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

/** An answer: the named message, or x:refuse with the same nonce. */
export type Answer<T> = { ok: true; value: T } | { ok: false; refuse: DocRefuse };

export function parseRefuse(p: Buffer): DocRefuse & { nonce: bigint } {
  const r = new PayloadReader(p, 'x:refuse');
  const nonce = r.u64();
  const command = r.varString();
  const code = r.u8() | (r.u8() << 8); // u16 little-endian
  return { nonce, command, code, message: r.varString() };
}

export function parseBalance(p: Buffer): DocBalance {
  const r = new PayloadReader(p, 'x:balance');
  return { nonce: r.u64(), kind: r.u8(), tier: r.varString(), expiresAt: r.u64(), balanceMsat: r.u64(), chargedBytes: r.u64(), freeBytesLeft: r.u64() };
}

export class PaywallClient {
  #nonce = 1000n;
  private constructor(readonly x: XClient) {}

  static async connect(port: number, o: XClientOptions = {}): Promise<PaywallClient> {
    return new PaywallClient(await XClient.connect(port, o));
  }

  get p2p() {
    return this.x.p2p;
  }

  /** Send `command` with a fresh nonce + body; resolve with the answer `answer` or x:refuse carrying that nonce. */
  async request(command: string, body: Buffer, answer: string, timeoutMs = 20_000): Promise<{ nonce: bigint; frame: Frame }> {
    const nonce = ++this.#nonce;
    const from = this.p2p.frames.length;
    this.x.sendX(command, Buffer.concat([new PayloadWriter(8).u64(nonce).finish(), body]));
    const frame = await waitFor(
      () => {
        if (this.p2p.isClosed) throw new Error(`connection closed before the answer to ${command}`);
        return this.p2p.frames.slice(from).find((f) => (f.command === answer || f.command === 'x:refuse') && f.payload.length >= 8 && f.payload.readBigUInt64LE(0) === nonce);
      },
      timeoutMs,
      `the answer to ${command}`,
      { intervalMs: 10 },
    );
    return { nonce, frame };
  }

  #wrap<T>(f: Frame, parse: (r: PayloadReader) => T): Answer<T> {
    if (f.command === 'x:refuse') return { ok: false, refuse: parseRefuse(f.payload) };
    const r = new PayloadReader(f.payload, f.command);
    r.u64(); // nonce
    return { ok: true, value: parse(r) };
  }

  async offers(): Promise<DocOffers> {
    const { frame } = await this.request('x:offers', Buffer.alloc(0), 'x:offers');
    const a = this.#wrap(frame, (r) => {
      if (r.u8() !== 1) throw new Error('offers_version is not 1');
      const network = r.varString();
      const currency = r.varString();
      const offers: DocOffer[] = [];
      for (let i = r.compactSize(); i > 0; i--) {
        offers.push({ id: r.varString(), kind: r.u8(), tier: r.varString(), priceMsat: r.u64(), duration: r.u64(), maxMsat: r.u64(), msatPerUnit: r.u64(), unitBytes: r.u64(), freeBytes: r.u64() });
      }
      const paidOnly: string[] = [];
      for (let i = r.compactSize(); i > 0; i--) paidOnly.push(r.varString());
      return { network, currency, offers, paidOnly, freeDailyUpload: r.u64() };
    });
    if (!a.ok) throw new Error(`x:offers refused: ${a.refuse.message}`);
    return a.value;
  }

  async invoice(offerId: string, amountMsat = 0n): Promise<Answer<DocInvoice>> {
    const { frame } = await this.request('x:invoice', new PayloadWriter(32).varString(offerId).u64(amountMsat).finish(), 'x:invoice');
    return this.#wrap(frame, (r) => ({ paymentHash: Buffer.from(r.bytes(32)), claimToken: Buffer.from(r.bytes(16)), amountMsat: r.u64(), expiresAt: r.u64(), bolt11: r.varString() }));
  }

  async claim(paymentHash: Buffer, claimToken: Buffer, preimage: Buffer): Promise<Answer<DocGrant>> {
    const { frame } = await this.request('x:claim', Buffer.concat([paymentHash, claimToken, preimage]), 'x:grant');
    return this.#wrap(frame, readGrant);
  }

  async auth(credential: Buffer): Promise<Answer<DocGrant>> {
    const { frame } = await this.request('x:auth', new PayloadWriter(200).varBytes(credential).finish(), 'x:grant');
    return this.#wrap(frame, readGrant);
  }

  async balance(): Promise<DocBalance> {
    const { frame } = await this.request('x:balance', Buffer.alloc(0), 'x:balance');
    if (frame.command !== 'x:balance') throw new Error(`x:balance refused: ${parseRefuse(frame.payload).message}`);
    return parseBalance(frame.payload);
  }

  close(): Promise<void> {
    return this.x.close();
  }
}

function readGrant(r: PayloadReader): DocGrant {
  return { flags: r.u8(), kind: r.u8(), tier: r.varString(), expiresAt: r.u64(), balanceMsat: r.u64(), credential: Buffer.from(r.varBytes()) };
}
