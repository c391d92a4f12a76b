/**
 * The paid-access requests of docs/x-protocol.md §4.3, one method each, over any XRequests.
 * A refusal becomes a BuyerError carrying the seller's reason name; an answer that does not
 * parse becomes `malformed_answer`.
 */
import { BuyerError, type BuyerErrorCode } from './errors.js';
import * as P from './protocol.js';
import type { XAnswer, XRequests } from './requests.js';

export class SellerClient {
  constructor(
    /** the seller's identity in the wallet (see sellerId) */
    readonly seller: string,
    readonly requests: XRequests,
  ) {}

  async offers(): Promise<P.OffersAnswer> {
    const a = await this.#ask(P.CMD.offers, (n) => P.encodeNonce(n), P.CMD.offers, 'refused');
    const o = parse(a, P.decodeOffers);
    if (o.version !== P.OFFERS_VERSION) throw new BuyerError('malformed_answer', `offers_version ${o.version} is not one this client knows (1)`);
    return o;
  }

  async invoice(offerId: string, amountMsat: bigint): Promise<P.InvoiceAnswer> {
    return parse(await this.#ask(P.CMD.invoice, (nonce) => P.encodeInvoiceRequest({ nonce, offerId, amountMsat }), P.CMD.invoice, 'refused'), P.decodeInvoiceAnswer);
  }

  async claim(paymentHash: Buffer, claimToken: Buffer, preimage: Buffer): Promise<P.GrantAnswer> {
    return parse(await this.#ask(P.CMD.claim, (nonce) => P.encodeClaim({ nonce, paymentHash, claimToken, preimage }), P.CMD.grant, 'claim_refused'), P.decodeGrant);
  }

  async auth(credential: Buffer): Promise<P.GrantAnswer> {
    return parse(await this.#ask(P.CMD.auth, (nonce) => P.encodeAuth({ nonce, credential }), P.CMD.grant, 'refused'), P.decodeGrant);
  }

  async balance(): Promise<P.BalanceAnswer> {
    return parse(await this.#ask(P.CMD.balance, (n) => P.encodeNonce(n), P.CMD.balance, 'refused'), P.decodeBalance);
  }

  async #ask(command: string, build: (nonce: bigint) => Buffer, answer: string, refusedAs: BuyerErrorCode): Promise<XAnswer> {
    const a = await this.requests.request(command, build);
    if (a.command === P.CMD.refuse) {
      const r = parse(a, P.decodeRefuse);
      const reason = P.refuseReason(r.code);
      throw new BuyerError(reason === 'unknown_offer' ? 'unknown_offer' : refusedAs, `${command} refused: ${reason} (code ${r.code}): ${r.message}`, reason);
    }
    if (a.command !== answer) throw new BuyerError('malformed_answer', `${command} was answered with ${a.command}`);
    return a;
  }
}

function parse<T>(a: XAnswer, decode: (b: Buffer) => T): T {
  try {
    return decode(a.payload);
  } catch (e) {
    throw new BuyerError('malformed_answer', `${a.command}: ${(e as Error).message}`);
  }
}
