/**
 * A payer pays a BOLT11 invoice from the buyer's Lightning wallet and returns the preimage.
 * Amounts are integer millisatoshis. The caller has already checked the invoice against the offer.
 */
export interface PaymentResult {
  /** 32 bytes; sha256 of it is the payment hash */
  preimage: Buffer;
  /** routing fees paid, when the backend says */
  feeMsat: bigint;
}

export interface Payer {
  /** lnd, cln, lnbits, phoenixd, dev */
  readonly kind: string;
  /**
   * Pay `bolt11` (whose amount is `amountMsat`), spending at most `maxFeeMsat` in fees.
   * Throws PayerError; `definite` tells whether nothing can have been spent.
   */
  pay(bolt11: string, amountMsat: bigint, maxFeeMsat: bigint): Promise<PaymentResult>;
}

export class PayerError extends Error {
  constructor(
    readonly payer: string,
    message: string,
    /** true: the payment definitely failed and nothing was spent; false: its outcome is unknown */
    readonly definite: boolean,
  ) {
    super(`${payer}: ${message}`);
    this.name = 'PayerError';
  }
}

/** A 32-byte preimage from hex or base64, or an error. */
export function preimageFrom(payer: string, v: unknown, encoding: 'hex' | 'base64'): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v, encoding) : Buffer.alloc(0);
  if (b.length !== 32) throw new PayerError(payer, `the answer carries no 32-byte preimage (${String(v).slice(0, 80)})`, false);
  return b;
}
