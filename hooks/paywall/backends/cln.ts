/**
 * Core Lightning's clnrest (built in since v23.08): every RPC method is `POST /v1/<method>` with a
 * JSON body and a `Rune` header; HTTPS with the certificate in its clnrest-certs directory.
 * `invoice` {amount_msat, label (unique), description, expiry} and `listinvoices {payment_hash}`.
 * Never GET /v1/listinvoices?payment_hash=…: clnrest ignores query strings and would list every
 * invoice, whose first is an arbitrary one. Rune with least rights:
 * `lightning-cli createrune restrictions='[["method=invoice","method=listinvoices"]]'`.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { backendClient, failStatus, type HttpBackendOptions } from './http.js';
import { BackendError, checkHash, toMsat, type CreatedInvoice, type InvoiceStatus, type LightningBackend } from './types.js';

export interface ClnOptions extends HttpBackendOptions {
  /** e.g. https://127.0.0.1:3010; tlsCertFile is clnrest's certificate */
  url: string;
  runeFile: string;
  network: string;
}

export function createClnBackend(o: ClnOptions): LightningBackend {
  const name = 'cln';
  const client = backendClient(name, o, { Rune: readFileSync(o.runeFile, 'utf8').trim() });
  const call = (method: string, json: unknown) => client('POST', `/v1/${method}`, { json });

  return {
    kind: name,
    network: o.network,
    async createInvoice(amountMsat, memo, expirySeconds): Promise<CreatedInvoice> {
      // labels must be unique on the node: a random one per invoice
      const label = `bhp-paywall-${randomBytes(12).toString('hex')}`;
      if (amountMsat > BigInt(Number.MAX_SAFE_INTEGER)) throw new BackendError(name, 'rejected', 'amount too large');
      const a = await call('invoice', { amount_msat: Number(amountMsat), label, description: memo, expiry: expirySeconds });
      if (a.status < 200 || a.status > 299) failStatus(name, a, 'invoice');
      const b = a.body as { payment_hash?: unknown; bolt11?: unknown; expires_at?: unknown } | null;
      if (typeof b?.bolt11 !== 'string') throw new BackendError(name, 'protocol', `invoice: answer without bolt11: ${a.text.slice(0, 200)}`);
      const expiresAt = typeof b.expires_at === 'number' ? b.expires_at : Math.floor(Date.now() / 1000) + expirySeconds;
      return { paymentHash: checkHash(name, b.payment_hash), bolt11: b.bolt11, expiresAt };
    },
    async lookupInvoice(paymentHash): Promise<InvoiceStatus> {
      const hash = checkHash(name, paymentHash);
      const a = await call('listinvoices', { payment_hash: hash });
      if (a.status < 200 || a.status > 299) failStatus(name, a, 'listinvoices');
      const list = (a.body as { invoices?: unknown } | null)?.invoices;
      if (!Array.isArray(list)) throw new BackendError(name, 'protocol', `listinvoices: answer without invoices[]: ${a.text.slice(0, 200)}`);
      // only the invoice with our hash counts, whatever else the node returns
      const inv = list.find((i: { payment_hash?: unknown }) => typeof i?.payment_hash === 'string' && i.payment_hash.toLowerCase() === hash) as
        | { status?: unknown; amount_received_msat?: unknown }
        | undefined;
      if (!inv) return { state: 'unknown', amountPaidMsat: 0n };
      switch (inv.status) {
        case 'paid':
          return { state: 'settled', amountPaidMsat: toMsat(name, inv.amount_received_msat, 'amount_received_msat') };
        case 'expired':
          return { state: 'expired', amountPaidMsat: 0n };
        case 'unpaid':
          return { state: 'open', amountPaidMsat: 0n };
        default:
          throw new BackendError(name, 'protocol', `listinvoices: unknown status ${String(inv.status)}`);
      }
    },
  };
}
