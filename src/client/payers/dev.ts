/**
 * dev: pays invoices of a seller whose paywall runs the dev backend (no Lightning anywhere):
 * "paying" is asking that backend to settle the invoice, which returns the preimage as a real
 * payment would. In-process (`settle`, e.g. the seller's PaywallAdmin.settle in a test or demo),
 * or over the seller's admin HTTP API: POST {url}/hooks/{hook}/settle {paymentHash} with the admin
 * bearer token, answered {paymentHash, preimage} (docs/hooks/paywall.md). For demos and tests only.
 */
import bolt11 from '@atomiqlabs/bolt11';
import { requestJson } from '../../../hooks/paywall/backends/http.js';
import { PayerError, preimageFrom, type Payer } from './types.js';

export type DevPayerOptions = { settle: (paymentHash: string) => string | Promise<string> } | { url: string; token: string; /** the paywall's name in the seller's chain (default paywall) */ hook?: string; timeoutMs?: number };

export function createDevPayer(o: DevPayerOptions): Payer {
  const kind = 'dev';
  return {
    kind,
    async pay(paymentRequest) {
      const hash = String(bolt11.decode(paymentRequest, networkOf(paymentRequest)).tagsObject.payment_hash ?? '');
      if ('settle' in o) {
        try {
          return { preimage: preimageFrom(kind, await o.settle(hash), 'hex'), feeMsat: 0n };
        } catch (e) {
          throw e instanceof PayerError ? e : new PayerError(kind, (e as Error).message, true);
        }
      }
      const url = new URL(o.url);
      url.pathname = `${url.pathname.replace(/\/+$/, '')}/hooks/${encodeURIComponent(o.hook ?? 'paywall')}/settle`;
      let a;
      try {
        a = await requestJson({ backend: kind, url, method: 'POST', json: { paymentHash: hash }, headers: { authorization: `Bearer ${o.token}` }, timeoutMs: o.timeoutMs ?? 10_000 });
      } catch (e) {
        throw new PayerError(kind, (e as Error).message, /ECONNREFUSED/.test((e as Error).message));
      }
      if (a.status !== 200) throw new PayerError(kind, `settle: HTTP ${a.status}: ${a.text.slice(0, 200)}`, true);
      return { preimage: preimageFrom(kind, (a.body as { preimage?: unknown } | null)?.preimage, 'hex'), feeMsat: 0n };
    },
  };
}

/** The bolt11 library's network record for an invoice's prefix (lnbcrt, lntbs, lntb, lnbc). */
export function networkOf(paymentRequest: string): { bech32: string; pubKeyHash: number; scriptHash: number; validWitnessVersions: number[]; wif: number } {
  const m = /^ln(bcrt|tbs|tb|bc)/i.exec(paymentRequest);
  const bech32 = (m?.[1] ?? 'bc').toLowerCase();
  const mainnet = bech32 === 'bc';
  return { bech32, pubKeyHash: mainnet ? 0x00 : 0x6f, scriptHash: mainnet ? 0x05 : 0xc4, validWitnessVersions: [0, 1], wif: mainnet ? 0x80 : 0xef };
}
