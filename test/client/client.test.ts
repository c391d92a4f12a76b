/**
 * The client library (bitcoin-hook-proxy/client) against the seller's side. Real parts: litecoind
 * 0.21 (Bitcoin Core 0.21's P2P code) behind the real proxy with the features and paywall hooks
 * on the dev backend (real BOLT11 invoices signed with a local key). The client speaks to it
 * over TCP as any peer would; its dev payer settles through the paywall's admin interface.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { NETWORKS } from '../../src/codec/index.js';
import { BuyerError, PayerError, SellerClient, Wallet, XConnection, buy, checkInvoice, createDevPayer, presentCredential, type InvoiceAnswer, type Payer, type XRequests } from '../../src/client/index.js';
import { decodeInvoiceAnswer, encodeInvoiceAnswer } from '../../src/client/protocol.js';
import { createDevBackend } from '../../hooks/paywall/backends/dev.js';
import { litecoindSkipReason } from '../support/litecoind.js';
import { startSeller, type Seller } from './seller.js';

const skip = litecoindSkipReason();
let seller: Seller;
let n = 0;
const walletFile = () => path.join(seller.tmp, `wallet-${++n}.json`);
const connect = () => XConnection.connect({ host: '127.0.0.1', port: seller.proxy.port, network: NETWORKS.regtest });
const devPayer = (): Payer => seller.payer();

/** A payer that counts its calls around another. */
function counting(inner: Payer): Payer & { calls: number } {
  const p = { kind: inner.kind, calls: 0, pay: (b: string, a: bigint, f: bigint) => (p.calls++, inner.pay(b, a, f)) };
  return p;
}

async function rejects(p: Promise<unknown>, code: string, reason?: string): Promise<BuyerError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof BuyerError, `a BuyerError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (reason) assert.equal(e.reason, reason, e.message);
    assert.ok(e.hint.length > 10, 'every error says what to do');
    return e;
  }
  assert.fail(`expected ${code}`);
}

before(async () => {
  if (!skip) seller = await startSeller('client');
});
after(async () => seller?.stop());

test('handshake with BIP 434, x:hello and the offers', { skip, timeout: 60_000 }, async () => {
  const c = await connect();
  try {
    assert.ok(c.remoteVersion && c.remoteVersion.version >= 70017, 'the proxy raised its node\'s version to 70017 for us');
    assert.ok(c.sells(), 'the feature data lists x:offers');
    const hello = await c.hello();
    assert.equal(hello.network, 'regtest');
    assert.deepEqual(hello.features, ['bitcoin-hook-proxy/x/1'], 'the proxy recorded our announcement');
    assert.ok(hello.modules.some((m) => m.name === 'paywall' && m.commands.includes('x:claim')));
    const o = await c.seller.offers();
    assert.equal(o.lightningNetwork, 'regtest');
    const pro = o.offers.find((x) => x.id === 'pro');
    assert.deepEqual([pro?.kind, pro?.tier, pro?.priceMsat], ['pass', 'pro', 2_000_000n]);
    const b = await c.seller.balance();
    assert.equal(b.kind, 'free');
  } finally {
    c.close();
  }
});

test('buy a pass: invoice checked, paid once, claimed, stored 0600; a new connection presents it', { skip, timeout: 60_000 }, async () => {
  const wallet = Wallet.open(walletFile());
  const payer = counting(devPayer());
  const steps: string[] = [];
  const c = await connect();
  try {
    const g = await buy(c.seller, { offerId: 'pro', maxMsat: 2_000_000n, payer, wallet, progress: (s) => steps.push(s) });
    assert.deepEqual(steps, ['invoice', 'paying', 'paid', 'claimed']);
    assert.equal(g.tier, 'pro');
    assert.ok(g.expiresAt > BigInt(Math.floor(Date.now() / 1000) + 86_000));
    assert.equal(payer.calls, 1);
    const b = await c.seller.balance();
    assert.deepEqual([b.kind, b.tier], ['pass', 'pro']);
  } finally {
    c.close();
  }
  assert.equal(statSync(wallet.file).mode & 0o777, 0o600);
  const stored = JSON.parse(readFileSync(wallet.file, 'utf8'));
  assert.equal(stored.purchases[0].state, 'claimed');
  assert.equal(stored.credentials[`127.0.0.1:${seller.proxy.port}`][0].tier, 'pro');
  assert.equal(wallet.spentMsat(), 2_000_000n, 'the dev payer charges no fee');

  const again = await connect();
  try {
    const g = await presentCredential(again.seller, Wallet.open(wallet.file));
    assert.equal(g?.tier, 'pro');
    assert.equal((await again.seller.balance()).tier, 'pro');
  } finally {
    again.close();
  }
});

test('credit: buy an amount, read the balance', { skip, timeout: 60_000 }, async () => {
  const wallet = Wallet.open(walletFile());
  const c = await connect();
  try {
    const g = await buy(c.seller, { offerId: 'credit', amountMsat: 500_000n, maxMsat: 500_000n, payer: devPayer(), wallet });
    assert.deepEqual([g.kind, g.tier, g.balanceMsat], ['credit', 'metered', 500_000n]);
    const b = await c.seller.balance();
    assert.equal(b.kind, 'credit');
    assert.ok(b.balanceMsat <= 500_000n && b.balanceMsat > 0n);
  } finally {
    c.close();
  }
});

test('price above the limit: no invoice asked, nothing paid or recorded', { skip, timeout: 60_000 }, async () => {
  const wallet = Wallet.open(walletFile());
  const payer = counting(devPayer());
  const c = await connect();
  try {
    await rejects(buy(c.seller, { offerId: 'pro', maxMsat: 1_999_999n, payer, wallet }), 'price_above_limit');
    await rejects(buy(c.seller, { offerId: 'nope', maxMsat: 10n ** 12n, payer, wallet }), 'unknown_offer');
  } finally {
    c.close();
  }
  assert.equal(payer.calls, 0);
  assert.equal(wallet.purchases().length, 0);
});

test('payer failure: payment_failed, recorded as failed, not counted; the next buy pays afresh', { skip, timeout: 60_000 }, async () => {
  const wallet = Wallet.open(walletFile());
  const failing: Payer = { kind: 'dev', pay: async () => Promise.reject(new PayerError('dev', 'no route', true)) };
  const c = await connect();
  try {
    await rejects(buy(c.seller, { offerId: 'pro', maxMsat: 2_000_000n, payer: failing, wallet }), 'payment_failed');
    assert.equal(wallet.purchases()[0]?.state, 'failed');
    assert.equal(wallet.spentMsat(), 0n);
    // an unknown outcome blocks paying again until it is resolved
    const unknown: Payer = { kind: 'dev', pay: async () => Promise.reject(new PayerError('dev', 'timed out', false)) };
    await rejects(buy(c.seller, { offerId: 'pro', maxMsat: 2_000_000n, payer: unknown, wallet }), 'payment_pending');
    const payer = counting(devPayer());
    await rejects(buy(c.seller, { offerId: 'pro', maxMsat: 2_000_000n, payer, wallet }), 'payment_pending');
    assert.equal(payer.calls, 0, 'not paid while an earlier payment may have gone through');
    assert.equal(wallet.spentMsat(), 2_000_000n + 20_000n, 'the unknown payment counts at its most (price + fee limit)');
  } finally {
    c.close();
  }
});

test('a seller that hands out an invoice this wallet already paid: not paid again, the first purchase stays counted', { skip, timeout: 60_000 }, async () => {
  // the real seller's first invoice, replayed by a hostile seller as the answer to a second
  // x:invoice. LND refuses to pay an invoice twice ("invoice is already paid", a definite failure),
  // which used to mark the FIRST purchase (the same payment hash) failed: the budget forgot it
  const wallet = Wallet.open(walletFile());
  let first: Buffer | null = null;
  let calls = 0;
  const lndLike: Payer = { kind: 'lnd', pay: async (b, a, f) => (++calls === 1 ? devPayer().pay(b, a, f) : Promise.reject(new PayerError('lnd', 'payment failed: invoice is already paid', true))) };
  const c = await connect();
  try {
    const requests = { request: async (cmd: string, build: (n: bigint) => Buffer) => {
      const a = await c.requests.request(cmd, build);
      if (a.command !== 'x:invoice') return a;
      first ??= a.payload;
      return { command: a.command, payload: first };
    } } as unknown as XRequests;
    const hostile = new SellerClient(c.seller.seller, requests);
    await buy(hostile, { offerId: 'pro', maxMsat: 2_000_000n, payer: lndLike, wallet });
    const e = await rejects(buy(hostile, { offerId: 'pro', maxMsat: 2_000_000n, payer: lndLike, wallet }), 'invoice_mismatch');
    assert.match(e.message, /already/);
  } finally {
    c.close();
  }
  assert.equal(calls, 1, 'the replayed invoice was not paid');
  assert.deepEqual(wallet.purchases().map((p) => p.state), ['claimed']);
  assert.equal(wallet.spentMsat(), 2_000_000n, 'the first payment still counts');
});

test('the seller refuses the claim (underpaid): claim_refused with its reason, recorded, never paid twice', { skip, timeout: 60_000 }, async () => {
  const wallet = Wallet.open(walletFile());
  // pays less than asked (the dev backend records 1 msat received), as a faulty payer might
  const short = counting(createDevPayer({ settle: (h) => seller.settle(h, 1n) }));
  const c = await connect();
  try {
    await rejects(buy(c.seller, { offerId: 'pro', maxMsat: 2_000_000n, payer: short, wallet }), 'claim_refused', 'underpaid');
    assert.equal(wallet.purchases()[0]?.state, 'refused');
    assert.equal(short.calls, 1);
  } finally {
    c.close();
  }
});

test('connection lost after paying: the next buy claims the same payment, it does not pay again', { skip, timeout: 60_000 }, async () => {
  const wallet = Wallet.open(walletFile());
  const first = await connect();
  const dropping: Payer = {
    kind: 'dev',
    async pay(b, a, f) {
      const r = await devPayer().pay(b, a, f);
      first.close(); // the connection dies between payment and claim
      return r;
    },
  };
  await rejects(buy(first.seller, { offerId: 'pro', maxMsat: 2_000_000n, payer: dropping, wallet }), 'closed');
  assert.equal(wallet.purchases()[0]?.state, 'paid');
  const payer = counting(devPayer());
  const steps: string[] = [];
  const c = await connect();
  try {
    const g = await buy(c.seller, { offerId: 'pro', maxMsat: 2_000_000n, payer, wallet, progress: (s) => steps.push(s) });
    assert.equal(g.tier, 'pro');
    assert.deepEqual(steps, ['claiming_earlier', 'claimed']);
    assert.equal(payer.calls, 0);
    assert.equal(wallet.purchases().length, 1);
    assert.equal(wallet.purchases()[0]?.state, 'claimed');
  } finally {
    c.close();
  }
});

test('unreachable and not a proxy: documented errors', { skip, timeout: 60_000 }, async () => {
  await rejects(XConnection.connect({ host: '127.0.0.1', port: 1, network: NETWORKS.regtest }), 'unreachable');
  // the node itself, not behind the proxy: no x: feature
  await rejects(XConnection.connect({ host: '127.0.0.1', port: seller.node.p2pPort, network: NETWORKS.regtest }), 'no_x_feature');
  // the wrong network's magic
  await rejects(XConnection.connect({ host: '127.0.0.1', port: seller.proxy.port, network: NETWORKS.mainnet, timeoutMs: 5000 }), 'handshake_failed');
});

test('an invoice that differs from the offer (amount, hash, network, signature, expiry) is never paid', { skip, timeout: 60_000 }, async () => {
  // real invoices from dev backends of our own (another signing key), swapped into the real seller's answers
  const other = createDevBackend({ network: 'regtest' });
  const mainnet = createDevBackend({ network: 'bitcoin' });
  const tamperings: [string, RegExp, (a: InvoiceAnswer) => Promise<InvoiceAnswer>][] = [
    ['amount', /amount: the invoice asks 2000001000 msat|amount: the invoice asks/, async (a) => { const i = await other.createInvoice(a.amountMsat + 1000n, 'x', 600); return { ...a, bolt11: i.bolt11, paymentHash: Buffer.from(i.paymentHash, 'hex') }; }],
    ['hash', /payment hash/, async (a) => ({ ...a, paymentHash: Buffer.alloc(32, 7) })],
    ['network', /network: the invoice is lnbc/, async (a) => { const i = await mainnet.createInvoice(a.amountMsat, 'x', 600); return { ...a, bolt11: i.bolt11, paymentHash: Buffer.from(i.paymentHash, 'hex') }; }],
    ['signature', /does not decode or its signature/, async (a) => ({ ...a, bolt11: a.bolt11.slice(0, 40) + (a.bolt11[40] === 'q' ? 'p' : 'q') + a.bolt11.slice(41) })],
    ['answer amount', /the x:invoice answer says/, async (a) => ({ ...a, amountMsat: a.amountMsat - 1n })],
    ['expiry', /expiry: the answer says/, async (a) => ({ ...a, expiresAt: a.expiresAt + 86_400n })],
  ];
  const wallet = Wallet.open(walletFile());
  const payer = counting(devPayer());
  const c = await connect();
  try {
    for (const [what, message, tamper] of tamperings) {
      const requests = { request: async (cmd: string, build: (n: bigint) => Buffer) => {
        const a = await c.requests.request(cmd, build);
        if (a.command !== 'x:invoice') return a;
        const t = await tamper(decodeInvoiceAnswer(a.payload));
        return { command: a.command, payload: encodeInvoiceAnswer(t) };
      } } as unknown as XRequests;
      const e = await rejects(buy(new SellerClient(c.seller.seller, requests), { offerId: 'pro', maxMsat: 2_000_000n, payer, wallet }), 'invoice_mismatch');
      assert.match(e.message, message, what);
    }
  } finally {
    c.close();
  }
  assert.equal(payer.calls, 0, 'nothing was paid');
  assert.equal(wallet.purchases().length, 0);
  // and an expired invoice, checked at a later time
  const i = await other.createInvoice(1000n, 'x', 60);
  const answer = { nonce: 1n, paymentHash: Buffer.from(i.paymentHash, 'hex'), claimToken: Buffer.alloc(16), amountMsat: 1000n, expiresAt: BigInt(i.expiresAt), bolt11: i.bolt11 };
  assert.throws(() => checkInvoice(answer, { amountMsat: 1000n, lightningNetwork: 'regtest', nowS: i.expiresAt + 1 }), /expired at/);
  assert.equal(checkInvoice(answer, { amountMsat: 1000n, lightningNetwork: 'regtest' }).paymentHash, i.paymentHash);
});
