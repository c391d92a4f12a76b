/**
 * LND REST (lnrpc/lightning.yaml): POST /v1/invoices to create, GET /v1/invoice/{r_hash hex} to look
 * up. Auth: `Grpc-Metadata-macaroon` with the hex of an invoice macaroon file
 * (`lncli bakemacaroon invoices:read invoices:write`). TLS pinned to LND's tls.cert. Bytes fields
 * (r_hash, r_preimage) are standard base64 in JSON; int64 fields are decimal strings. An unknown
 * hash is HTTP 500 "unable to locate invoice" (or "there are no existing invoices"), not a 404.
 */
import { readFileSync } from 'node:fs';
import { backendClient, errorText, failStatus, type HttpBackendOptions } from './http.js';
import { BackendError, checkHash, toMsat, type CreatedInvoice, type InvoiceStatus, type LightningBackend } from './types.js';

export interface LndOptions extends HttpBackendOptions {
  /** e.g. https://127.0.0.1:8080; tlsCertFile is LND's tls.cert */
  url: string;
  macaroonFile: string;
  network: string;
}

const NOT_FOUND = /unable to locate invoice|there are no existing invoices/i;

export function createLndBackend(o: LndOptions): LightningBackend {
  const name = 'lnd';
  const call = backendClient(name, o, { 'Grpc-Metadata-macaroon': readFileSync(o.macaroonFile).toString('hex') });

  return {
    kind: name,
    network: o.network,
    async createInvoice(amountMsat, memo, expirySeconds): Promise<CreatedInvoice> {
      // expiry always set: its default changed between LND versions (3600 → 86400)
      const a = await call('POST', '/v1/invoices', { json: { value_msat: amountMsat.toString(), memo, expiry: String(expirySeconds) } });
      if (a.status !== 200) failStatus(name, a, 'create invoice');
      const b = a.body as { r_hash?: unknown; payment_request?: unknown } | null;
      if (typeof b?.r_hash !== 'string' || typeof b.payment_request !== 'string') throw new BackendError(name, 'protocol', `create invoice: answer without r_hash/payment_request: ${a.text.slice(0, 200)}`);
      const paymentHash = checkHash(name, Buffer.from(b.r_hash, 'base64').toString('hex'), 'r_hash');
      return { paymentHash, bolt11: b.payment_request, expiresAt: Math.floor(Date.now() / 1000) + expirySeconds };
    },
    async lookupInvoice(paymentHash): Promise<InvoiceStatus> {
      const a = await call('GET', `/v1/invoice/${checkHash(name, paymentHash)}`);
      if (a.status === 500 && NOT_FOUND.test(errorText(a))) return { state: 'unknown', amountPaidMsat: 0n };
      if (a.status !== 200) failStatus(name, a, 'lookup invoice');
      const b = a.body as { state?: unknown; amt_paid_msat?: unknown; r_hash?: unknown } | null;
      if (typeof b?.r_hash === 'string' && Buffer.from(b.r_hash, 'base64').toString('hex') !== paymentHash) {
        throw new BackendError(name, 'protocol', 'lookup invoice: the answer is for another payment hash');
      }
      switch (b?.state) {
        case 'SETTLED':
          return { state: 'settled', amountPaidMsat: toMsat(name, b.amt_paid_msat, 'amt_paid_msat') };
        case 'CANCELED':
          return { state: 'canceled', amountPaidMsat: 0n };
        case 'OPEN':
        case 'ACCEPTED': // HTLC held, not settled: not paid yet
          return { state: 'open', amountPaidMsat: 0n };
        default:
          throw new BackendError(name, 'protocol', `lookup invoice: unknown state ${String(b?.state)}`);
      }
    },
  };
}
