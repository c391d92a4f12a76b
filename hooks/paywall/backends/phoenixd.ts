/**
 * phoenixd (ACINQ), HTTP API on port 9740: HTTP Basic auth with an empty user and the
 * `http-password-limited-access` password (enough to create invoices, not to pay);
 * `POST /createinvoice` form {amountSat, description, expirySeconds, externalId} →
 * {paymentHash, serialized}; `GET /payments/incoming/{paymentHash}` → {isPaid, receivedSat, ...},
 * 404 when unknown.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { backendClient, failStatus, type HttpBackendOptions } from './http.js';
import { BackendError, checkHash, toMsat, wholeSats, type CreatedInvoice, type InvoiceStatus, type LightningBackend } from './types.js';

export interface PhoenixdOptions extends HttpBackendOptions {
  /** e.g. http://127.0.0.1:9740 */
  url: string;
  passwordFile: string;
  network: string;
}

export function createPhoenixdBackend(o: PhoenixdOptions): LightningBackend {
  const name = 'phoenixd';
  const call = backendClient(name, o, { authorization: `Basic ${Buffer.from(`:${readFileSync(o.passwordFile, 'utf8').trim()}`).toString('base64')}` });

  return {
    kind: name,
    network: o.network,
    async createInvoice(amountMsat, memo, expirySeconds): Promise<CreatedInvoice> {
      const sats = wholeSats(name, amountMsat);
      const form = { amountSat: sats.toString(), description: memo, expirySeconds: String(expirySeconds), externalId: `bhp-${randomBytes(8).toString('hex')}` };
      const a = await call('POST', '/createinvoice', { form });
      if (a.status !== 200) failStatus(name, a, 'createinvoice');
      const b = a.body as { paymentHash?: unknown; serialized?: unknown } | null;
      if (typeof b?.serialized !== 'string') throw new BackendError(name, 'protocol', `createinvoice: answer without serialized: ${a.text.slice(0, 200)}`);
      return { paymentHash: checkHash(name, b.paymentHash), bolt11: b.serialized, expiresAt: Math.floor(Date.now() / 1000) + expirySeconds };
    },
    async lookupInvoice(paymentHash): Promise<InvoiceStatus> {
      const a = await call('GET', `/payments/incoming/${checkHash(name, paymentHash)}`);
      if (a.status === 404) return { state: 'unknown', amountPaidMsat: 0n };
      if (a.status !== 200) failStatus(name, a, 'incoming payment');
      const b = a.body as { isPaid?: unknown; receivedSat?: unknown } | null;
      if (typeof b?.isPaid !== 'boolean') throw new BackendError(name, 'protocol', `incoming payment: answer without isPaid: ${a.text.slice(0, 200)}`);
      if (!b.isPaid) return { state: 'open', amountPaidMsat: 0n };
      return { state: 'settled', amountPaidMsat: toMsat(name, b.receivedSat, 'receivedSat') * 1000n };
    },
  };
}
