/**
 * Before paying: decode the seller's BOLT11 (signature included: @atomiqlabs/bolt11 recovers the
 * signer and refuses a payee_node_key it does not match) and check it against what was asked
 * for: the amount, the Lightning network the offers named, the payment hash and expiry of the
 * x:invoice answer, and that it has not expired.
 */
import bolt11 from '@atomiqlabs/bolt11';
import { BuyerError } from './errors.js';
import { networkOf } from './payers/dev.js';
import type { InvoiceAnswer } from './protocol.js';

/** BOLT11 prefixes by the network names x:offers uses. */
const PREFIX: Record<string, string> = { bitcoin: 'lnbc', testnet: 'lntb', signet: 'lntbs', regtest: 'lnbcrt' };

export interface CheckedInvoice {
  paymentHash: string;
  amountMsat: bigint;
  expiresAt: number;
  payeeNodeKey: string;
}

/** Throws BuyerError('invoice_mismatch') naming the first thing that differs. */
export function checkInvoice(inv: InvoiceAnswer, expect: { amountMsat: bigint; lightningNetwork: string; nowS?: number }): CheckedInvoice {
  const bad = (what: string): never => {
    throw new BuyerError('invoice_mismatch', `the seller's invoice does not match: ${what}`);
  };
  const prefix = PREFIX[expect.lightningNetwork];
  if (!prefix) bad(`the offers name an unknown Lightning network "${expect.lightningNetwork}"`);
  const lower = inv.bolt11.toLowerCase();
  // lnbc is a prefix of lnbcrt and lntb of lntbs: compare the exact human-readable part
  const hrpNet = /^ln(bcrt|tbs|tb|bc)/.exec(lower)?.[0];
  if (hrpNet !== prefix) bad(`network: the invoice is ${hrpNet ?? 'not a BOLT11'}, the offers say ${prefix} (${expect.lightningNetwork})`);
  let d: ReturnType<typeof bolt11.decode>;
  try {
    d = bolt11.decode(inv.bolt11, networkOf(lower));
  } catch (e) {
    return bad(`it does not decode or its signature does not verify (${(e as Error).message})`);
  }
  const msat = d.millisatoshis ? BigInt(d.millisatoshis) : null;
  if (msat === null) bad('it has no amount');
  if (msat !== expect.amountMsat) bad(`amount: the invoice asks ${msat} msat, the offer ${expect.amountMsat} msat`);
  if (inv.amountMsat !== expect.amountMsat) bad(`amount: the x:invoice answer says ${inv.amountMsat} msat, the offer ${expect.amountMsat} msat`);
  const hash = String(d.tagsObject.payment_hash ?? '');
  if (hash !== inv.paymentHash.toString('hex')) bad(`payment hash: the invoice's is ${hash}, the answer's ${inv.paymentHash.toString('hex')}`);
  const expiresAt = d.timeExpireDate ?? (d.timestamp ?? 0) + 3600;
  const now = expect.nowS ?? Math.floor(Date.now() / 1000);
  if (expiresAt <= now) bad(`it expired at ${new Date(expiresAt * 1000).toISOString()}`);
  // the answer's expiry must not promise more time than the invoice really has
  if (inv.expiresAt > BigInt(expiresAt) + 5n) bad(`expiry: the answer says ${inv.expiresAt}, the invoice ${expiresAt}`);
  return { paymentHash: hash, amountMsat: expect.amountMsat, expiresAt, payeeNodeKey: d.payeeNodeKey ?? '' };
}
