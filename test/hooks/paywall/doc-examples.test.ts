/**
 * The hex examples of docs/x-protocol.md §6.2 (paid access) are the bytes the paywall hook
 * builds, and the client written from the document (doc-client.ts) reads them back. No node is
 * needed: the examples are frames, built with the codec's v1 framing and the hook's encoders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeFrame, NETWORKS } from '../../../src/codec/index.js';
import * as P from '../../../hooks/paywall/protocol.js';
import { parseBalance, parseRefuse } from './doc-client.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const NONCE = 0x0102030405060708n;

test('§6.2: the paid-access hex examples are the frames the paywall hook builds', () => {
  const doc = readFileSync(path.resolve(here, '../../../../docs/x-protocol.md'), 'utf8');
  const section = doc.slice(doc.indexOf('### 6.2 Paid access'), doc.indexOf('## 7.'));
  assert.ok(section.length > 100, 'the section is there');
  const blocks = [...section.matchAll(/```\n([\s\S]*?)```/g)].map((m) =>
    m[1]!
      .split('\n')
      .map((line) => line.trim().split(/\s{2,}/)[0]!.replace(/ /g, ''))
      .join(''),
  );
  const frame = (command: string, payload: Buffer) => encodeFrame(NETWORKS.regtest, command, payload).raw.toString('hex');
  const MiB = 1_048_576n;
  const offers = P.encodeOffers({
    nonce: NONCE,
    version: P.OFFERS_VERSION,
    lightningNetwork: 'regtest',
    currency: 'BTC',
    offers: [
      { id: 'pro', kind: 'pass', tier: 'pro', priceMsat: 2_000_000n, durationSeconds: 86_400n, maxMsat: 0n, msatPerUnit: 0n, unitBytes: 0n, freeBytes: 0n },
      { id: 'credit', kind: 'credit', tier: 'metered', priceMsat: 100_000n, durationSeconds: 0n, maxMsat: 1_000_000_000n, msatPerUnit: 1000n, unitBytes: MiB, freeBytes: MiB },
    ],
    paidOnly: ['mempool'],
    freeDailyUploadBytes: 1_000_000_000n,
  });
  const [aa, bb, cc, dd] = [Buffer.alloc(32, 0xaa), Buffer.alloc(16, 0xbb), Buffer.alloc(32, 0xcc), Buffer.alloc(4, 0xdd)];
  const balance = P.encodeBalance({ nonce: NONCE, kind: 'credit', tier: 'metered', expiresAt: 0n, balanceMsat: 99_000n, chargedBytes: MiB, freeBytesLeft: 0n });
  const refuse = P.encodeRefuse({ nonce: NONCE, command: P.CMD.claim, code: P.REFUSE.unpaid, message: 'unpaid' });
  assert.deepEqual(blocks, [
    frame(P.CMD.offers, P.encodeNonce(NONCE)),
    frame(P.CMD.offers, offers),
    frame(P.CMD.invoice, P.encodeInvoiceRequest({ nonce: NONCE, offerId: 'pro', amountMsat: 0n })),
    frame(P.CMD.claim, P.encodeClaim({ nonce: NONCE, paymentHash: aa, claimToken: bb, preimage: cc })),
    frame(P.CMD.grant, P.encodeGrant({ nonce: NONCE, flags: 0, kind: 'pass', tier: 'pro', expiresAt: 1_800_000_000n, balanceMsat: 0n, credential: dd })),
    frame(P.CMD.auth, P.encodeAuth({ nonce: NONCE, credential: dd })),
    frame(P.CMD.balance, balance),
    frame(P.CMD.refuse, refuse),
  ]);
  // and the client written from the document reads the answers back
  assert.deepEqual(parseBalance(balance), { nonce: NONCE, kind: 2, tier: 'metered', expiresAt: 0n, balanceMsat: 99_000n, chargedBytes: MiB, freeBytesLeft: 0n });
  assert.deepEqual(parseRefuse(refuse), { nonce: NONCE, command: 'x:claim', code: 10, message: 'unpaid' });
});
