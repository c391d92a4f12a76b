/**
 * LNbits: `POST /api/v1/payments` {out: false, amount (sat), memo, expiry, unit: "sat"} with the
 * wallet's invoice key in `X-Api-Key` (the invoice/read key, never the admin key), answered 201
 * with payment_hash and payment_request (newer versions: bolt11 too); `GET
 * /api/v1/payments/{payment_hash}` → {paid, details: {amount (msat), ...}}; 404 when unknown.
 */
import { readFileSync } from 'node:fs';
import { backendClient, failStatus, type HttpBackendOptions } from './http.js';
import { BackendError, checkHash, toMsat, wholeSats, type CreatedInvoice, type InvoiceStatus, type LightningBackend } from './types.js';

export interface LnbitsOptions extends HttpBackendOptions {
  /** a file holding the wallet's invoice key */
  apiKeyFile: string;
  network: string;
}

export function createLnbitsBackend(o: LnbitsOptions): LightningBackend {
  const name = 'lnbits';
  const call = backendClient(name, o, { 'X-Api-Key': readFileSync(o.apiKeyFile, 'utf8').trim() });

  return {
    kind: name,
    network: o.network,
    async createInvoice(amountMsat, memo, expirySeconds): Promise<CreatedInvoice> {
      const sats = wholeSats(name, amountMsat);
      const a = await call('POST', '/api/v1/payments', { json: { out: false, amount: Number(sats), memo, expiry: expirySeconds, unit: 'sat' } });
      if (a.status !== 201 && a.status !== 200) failStatus(name, a, 'create invoice');
      const b = a.body as { payment_hash?: unknown; payment_request?: unknown; bolt11?: unknown } | null;
      const bolt11 = b?.bolt11 ?? b?.payment_request;
      if (typeof bolt11 !== 'string') throw new BackendError(name, 'protocol', `create invoice: answer without payment_request: ${a.text.slice(0, 200)}`);
      return { paymentHash: checkHash(name, b?.payment_hash), bolt11, expiresAt: Math.floor(Date.now() / 1000) + expirySeconds };
    },
    async lookupInvoice(paymentHash): Promise<InvoiceStatus> {
      const a = await call('GET', `/api/v1/payments/${checkHash(name, paymentHash)}`);
      if (a.status === 404) return { state: 'unknown', amountPaidMsat: 0n };
      if (a.status !== 200) failStatus(name, a, 'check invoice');
      const b = a.body as { paid?: unknown; details?: { amount?: unknown; status?: unknown } } | null;
      if (typeof b?.paid !== 'boolean') throw new BackendError(name, 'protocol', `check invoice: answer without paid: ${a.text.slice(0, 200)}`);
      if (!b.paid) return { state: b.details?.status === 'failed' ? 'expired' : 'open', amountPaidMsat: 0n };
      return { state: 'settled', amountPaidMsat: toMsat(name, b.details?.amount, 'details.amount') };
    },
  };
}
