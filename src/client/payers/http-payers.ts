/**
 * Payers for the Lightning backends the seller side supports, over their REST APIs (same HTTP
 * client as the seller's backends: base URL, auth header, pinned certificate, timeout):
 *   - LND: POST /v2/router/send (SendPaymentV2, a stream of Payment updates, one JSON object
 *     per line, `{"result": Payment}`; status SUCCEEDED with payment_preimage in hex, or FAILED
 *     with failure_reason), or POST /v1/channels/transactions (SendPaymentSync: payment_error,
 *     payment_preimage in base64). Auth: Grpc-Metadata-macaroon (a macaroon with offchain:write).
 *   - Core Lightning clnrest: POST /v1/pay {bolt11, maxfee} with a Rune (method=pay);
 *     status complete with payment_preimage hex.
 *   - LNbits: POST /api/v1/payments {out: true, bolt11} with an admin X-Api-Key; 201 with
 *     payment_hash, then GET /api/v1/payments/{hash} for paid and preimage.
 *   - phoenixd: POST /payinvoice (form: invoice) with HTTP basic auth (empty user, the full
 *     http-password): paymentPreimage hex, routingFeeSat.
 * An HTTP error answer means the backend refused to pay (definite); a timeout or a dropped
 * connection after the request went out leaves the outcome unknown (not definite).
 */
import { readFileSync } from 'node:fs';
import { BackendError } from '../../../hooks/paywall/backends/types.js';
import { DEFAULT_HTTP_TIMEOUT_MS, backendClient, errorText, type Call, type HttpBackendOptions, type JsonAnswer } from '../../../hooks/paywall/backends/http.js';
import { PayerError, preimageFrom, type Payer, type PaymentResult } from './types.js';

const big = (v: unknown): bigint => (typeof v === 'string' && /^\d+$/.test(v) ? BigInt(v) : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : 0n);

/** Run a call; transport failures become PayerErrors (definite only when nothing can have reached the backend). */
async function send(payer: string, call: () => Promise<JsonAnswer>): Promise<JsonAnswer> {
  try {
    return await call();
  } catch (e) {
    const connectFailed = e instanceof BackendError && e.kind === 'unreachable' && /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH/.test(e.message);
    throw new PayerError(payer, (e as Error).message, connectFailed || (e instanceof BackendError && e.kind === 'auth'));
  }
}

function refused(payer: string, a: JsonAnswer): never {
  throw new PayerError(payer, `HTTP ${a.status}: ${errorText(a)}`, true);
}

export interface LndPayerOptions extends HttpBackendOptions {
  macaroonFile: string;
  /** router: /v2/router/send (default); sync: /v1/channels/transactions */
  api?: 'router' | 'sync';
}

export function createLndPayer(o: LndPayerOptions): Payer {
  const kind = 'lnd';
  const call: Call = backendClient(kind, o, { 'Grpc-Metadata-macaroon': readFileSync(o.macaroonFile).toString('hex') });
  return {
    kind,
    async pay(bolt11, _amountMsat, maxFeeMsat): Promise<PaymentResult> {
      if (o.api === 'sync') {
        const a = await send(kind, () => call('POST', '/v1/channels/transactions', { json: { payment_request: bolt11, fee_limit: { fixed_msat: maxFeeMsat.toString() } } }));
        if (a.status !== 200) refused(kind, a);
        const b = a.body as { payment_error?: string; payment_preimage?: string; payment_route?: { total_fees_msat?: string } } | null;
        if (b?.payment_error) throw new PayerError(kind, `payment failed: ${b.payment_error}`, true);
        return { preimage: preimageFrom(kind, b?.payment_preimage, 'base64'), feeMsat: big(b?.payment_route?.total_fees_msat) };
      }
      const timeoutSeconds = Math.max(1, Math.floor((o.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS) / 1000) - 1);
      const a = await send(kind, () => call('POST', '/v2/router/send', { json: { payment_request: bolt11, timeout_seconds: timeoutSeconds, fee_limit_msat: maxFeeMsat.toString(), no_inflight_updates: true } }));
      if (a.status !== 200) refused(kind, a);
      // the stream: one JSON object per line; the last says how it ended
      type LndPayment = { status?: string; payment_preimage?: string; failure_reason?: string; fee_msat?: string };
      let last = null as LndPayment | null;
      for (const line of a.text.split('\n')) {
        if (!line.trim()) continue;
        let o2: { result?: LndPayment; error?: { message?: string } };
        try {
          o2 = JSON.parse(line) as typeof o2;
        } catch {
          throw new PayerError(kind, `unreadable stream line: ${line.slice(0, 120)}`, false);
        }
        if (o2.error) throw new PayerError(kind, `payment failed: ${o2.error.message ?? JSON.stringify(o2.error)}`, true);
        if (o2.result) last = o2.result;
      }
      if (last?.status === 'SUCCEEDED') return { preimage: preimageFrom(kind, last.payment_preimage, 'hex'), feeMsat: big(last.fee_msat) };
      if (last?.status === 'FAILED') throw new PayerError(kind, `payment failed: ${last.failure_reason ?? 'unknown reason'}`, true);
      throw new PayerError(kind, `the payment did not finish (last status ${last?.status ?? 'none'})`, false);
    },
  };
}

export interface ClnPayerOptions extends HttpBackendOptions {
  runeFile: string;
}

export function createClnPayer(o: ClnPayerOptions): Payer {
  const kind = 'cln';
  const call = backendClient(kind, o, { Rune: readFileSync(o.runeFile, 'utf8').trim() });
  return {
    kind,
    async pay(bolt11, amountMsat, maxFeeMsat): Promise<PaymentResult> {
      const a = await send(kind, () => call('POST', '/v1/pay', { json: { bolt11, maxfee: Number(maxFeeMsat) } }));
      if (a.status !== 200 && a.status !== 201) refused(kind, a);
      const b = a.body as { status?: string; payment_preimage?: string; amount_sent_msat?: unknown } | null;
      if (b?.status === 'complete') return { preimage: preimageFrom(kind, b.payment_preimage, 'hex'), feeMsat: big(b.amount_sent_msat) > amountMsat ? big(b.amount_sent_msat) - amountMsat : 0n };
      if (b?.status === 'failed') throw new PayerError(kind, 'payment failed', true);
      throw new PayerError(kind, `payment not complete (status ${String(b?.status)})`, false);
    },
  };
}

export interface LnbitsPayerOptions extends HttpBackendOptions {
  /** the wallet's admin key (paying needs it; the invoice key cannot pay) */
  adminKeyFile: string;
}

export function createLnbitsPayer(o: LnbitsPayerOptions): Payer {
  const kind = 'lnbits';
  const call = backendClient(kind, o, { 'X-Api-Key': readFileSync(o.adminKeyFile, 'utf8').trim() });
  return {
    kind,
    async pay(bolt11): Promise<PaymentResult> {
      const a = await send(kind, () => call('POST', '/api/v1/payments', { json: { out: true, bolt11 } }));
      if (a.status !== 201 && a.status !== 200) refused(kind, a);
      const hash = (a.body as { payment_hash?: unknown } | null)?.payment_hash;
      if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/i.test(hash)) throw new PayerError(kind, `answer without payment_hash: ${a.text.slice(0, 120)}`, false);
      const s = await send(kind, () => call('GET', `/api/v1/payments/${hash}`));
      const b = s.body as { paid?: boolean; preimage?: string; details?: { fee?: unknown } } | null;
      if (s.status !== 200 || !b?.paid) throw new PayerError(kind, `payment not confirmed paid (HTTP ${s.status})`, false);
      // LNbits reports the fee as a negative msat amount
      const fee = typeof b.details?.fee === 'number' ? BigInt(Math.abs(Math.trunc(b.details.fee))) : 0n;
      return { preimage: preimageFrom(kind, b.preimage, 'hex'), feeMsat: fee };
    },
  };
}

export interface PhoenixdPayerOptions extends HttpBackendOptions {
  /** the full-access http-password (the limited one cannot pay) */
  passwordFile: string;
}

export function createPhoenixdPayer(o: PhoenixdPayerOptions): Payer {
  const kind = 'phoenixd';
  const auth = `Basic ${Buffer.from(`:${readFileSync(o.passwordFile, 'utf8').trim()}`).toString('base64')}`;
  const call = backendClient(kind, o, { Authorization: auth });
  return {
    kind,
    async pay(bolt11): Promise<PaymentResult> {
      const a = await send(kind, () => call('POST', '/payinvoice', { form: { invoice: bolt11 } }));
      if (a.status !== 200) refused(kind, a);
      const b = a.body as { paymentPreimage?: string; routingFeeSat?: unknown; reason?: string } | null;
      if (!b?.paymentPreimage) throw new PayerError(kind, `payment failed: ${b?.reason ?? a.text.slice(0, 120)}`, true);
      return { preimage: preimageFrom(kind, b.paymentPreimage, 'hex'), feeMsat: big(b.routingFeeSat) * 1000n };
    },
  };
}
