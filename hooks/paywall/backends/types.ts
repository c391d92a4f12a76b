/**
 * The one interface every Lightning backend implements (LND REST, Core Lightning clnrest, LNbits,
 * phoenixd, and the dev backend). Amounts are integer millisatoshis (bigint); hashes are lowercase hex.
 */

export interface CreatedInvoice {
  /** sha256 of the preimage, 64 lowercase hex digits */
  paymentHash: string;
  /** the BOLT11 payment request */
  bolt11: string;
  /** unix seconds after which the invoice can no longer be paid */
  expiresAt: number;
}

/** open: not paid yet; settled: paid; canceled/expired: can never be paid; unknown: the backend has no such invoice */
export type InvoiceState = 'open' | 'settled' | 'canceled' | 'expired' | 'unknown';

export interface InvoiceStatus {
  state: InvoiceState;
  /** what the backend says was received, 0n unless settled */
  amountPaidMsat: bigint;
}

export interface LightningBackend {
  /** backend kind, for logs and metrics labels: lnd, cln, lnbits, phoenixd, dev */
  readonly kind: string;
  /** The bitcoin network its invoices are for, as BOLT11 names it (bitcoin, testnet, signet, regtest). */
  readonly network: string;
  createInvoice(amountMsat: bigint, memo: string, expirySeconds: number): Promise<CreatedInvoice>;
  lookupInvoice(paymentHash: string): Promise<InvoiceStatus>;
  close?(): Promise<void>;
}

/**
 * Why a backend call failed. `unreachable` and `timeout` mean the backend is down or slow; `auth`
 * a bad macaroon/rune/key; `rejected` an error answer; `protocol` an answer we could not read.
 */
export type BackendErrorKind = 'unreachable' | 'timeout' | 'auth' | 'rejected' | 'protocol';

export class BackendError extends Error {
  constructor(
    readonly backend: string,
    readonly kind: BackendErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(`${backend}: ${message}`);
    this.name = 'BackendError';
  }
}

/** A 32-byte hash as 64 lowercase hex digits, or an error naming `what`. */
export function checkHash(backend: string, hash: unknown, what = 'payment hash'): string {
  if (typeof hash !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hash)) throw new BackendError(backend, 'protocol', `${what} is not 32 bytes of hex: ${String(hash).slice(0, 80)}`);
  return hash.toLowerCase();
}

/** An integer amount from JSON (number or decimal string), or an error naming `what`. */
export function toMsat(backend: string, v: unknown, what: string): bigint {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^\d{1,20}$/.test(v)) return BigInt(v);
  if (v === undefined || v === null) return 0n;
  throw new BackendError(backend, 'protocol', `${what} is not a non-negative integer: ${String(v).slice(0, 40)}`);
}

/** Backends that count in whole satoshis (LNbits, phoenixd) cannot invoice a fraction of one. */
export function wholeSats(backend: string, amountMsat: bigint): bigint {
  if (amountMsat <= 0n || amountMsat % 1000n !== 0n) throw new BackendError(backend, 'rejected', `amount ${amountMsat} msat is not a positive whole number of satoshis, which this backend requires`);
  return amountMsat / 1000n;
}
