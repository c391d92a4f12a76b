/**
 * hooks/paywall through the real loader and chain runner (createHookHarness, no sockets), for what
 * the litecoind tests cannot reach cheaply: options errors, loading by package name, requests
 * from peers without the x: feature, busy, a store that cannot write, a pass that ends. The
 * Lightning side is the dev backend or the LND documented-API stand-in (standins.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHookHarness, type FakePeer, type TestHarness } from '../../../src/hooks/testing.js';
import { X_FEATURE_ID } from '../../../src/hooks/index.js';
import * as P from '../../../hooks/paywall/protocol.js';
import { createPaywallHook } from '../../../hooks/paywall/index.js';
import { lndStandIn, phoenixdStandIn, secretFile, selfSignedCert } from './standins.js';
import { sleep, waitFor } from '../../support/wait.js';

const MODULE = 'bitcoin-hook-proxy/hooks/paywall'; // the package export, as an operator writes it

function setup() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-paywall-hook-'));
  const keys = path.join(dir, 'keys');
  writeFileSync(keys, `1 ${createHash('sha256').update('hook.test.ts').digest('hex')}\n`);
  return { dir, base: { backend: { kind: 'dev' }, store: { file: path.join(dir, 'state', 'paywall.json') }, keys: { file: keys }, passes: { pro: { priceSats: 2000, duration: '24h' } } } };
}
const features = () => new Map([[X_FEATURE_ID, Buffer.alloc(0)]]);

/** The paywall (by package name, or `module`), with `options` over the base ones, on the LND documented-API stand-in (TLS pinned, its macaroon). */
async function onLnd(options: object, module: string | ReturnType<typeof createPaywallHook> = MODULE) {
  const { base } = setup();
  const cert = selfSignedCert();
  const lnd = await lndStandIn(cert, 'aa');
  const macaroon = path.join(path.dirname(base.keys.file), 'mac');
  writeFileSync(macaroon, Buffer.from('aa', 'hex'));
  const all = { ...base, backend: { kind: 'lnd', url: lnd.url, macaroonFile: macaroon, tlsCertFile: cert.certFile }, ...options };
  // one branch each: the harness takes a spec by name or a module instance, not a union of the two
  const h = await createHookHarness([typeof module === 'string' ? { module, options: all } : { module, options: all }]);
  return { h, lnd, base };
}

/** Ask for a `pro` invoice as `peer` and decode the answer. */
async function requestInvoice(h: TestHarness, peer: FakePeer, nonce: bigint) {
  await h.deliver(peer, 'inbound', P.CMD.invoice, P.encodeInvoiceRequest({ nonce, offerId: 'pro', amountMsat: 0n }));
  return P.decodeInvoiceAnswer(Buffer.from((await answer(h, peer, nonce)).payload!));
}

async function answer(h: TestHarness, peer: FakePeer, nonce: bigint) {
  return waitFor(
    () => [...h.sent.map((s) => s.message), ...peer.pushed].find((m) => m.payload && m.payload.length >= 8 && Buffer.from(m.payload).readBigUInt64LE(0) === nonce),
    10_000,
    `the answer to nonce ${nonce}`,
  );
}

test('options are checked at load: no offer, keys twice, a missing key variable', async () => {
  const { base } = setup();
  await assert.rejects(createHookHarness([{ module: MODULE, options: { ...base, passes: {} } }]), /offer at least one pass or credit/);
  await assert.rejects(createHookHarness([{ module: MODULE, options: { ...base, keys: { file: base.keys.file, env: 'X' } } }]), /exactly one of keys.file and keys.env/);
  await assert.rejects(createHookHarness([{ module: MODULE, options: { ...base, keys: { env: 'BHP_TEST_NO_SUCH_VAR' } } }]), /BHP_TEST_NO_SUCH_VAR.*not set/);
  await assert.rejects(createHookHarness([{ module: MODULE, options: { ...base, backend: { kind: 'lnd', url: 'ftp://x', macaroonFile: 'm' } } }]), /http/);
});

test('no answer to peers that did not announce the x: feature or before the handshake; the fast path stays free', async () => {
  const { base } = setup();
  const h = await createHookHarness([{ module: MODULE, options: base }]);
  try {
    assert.equal(h.chain.hooksFor('inbound', 'ping').length, 0);
    assert.equal(h.chain.hooksFor('outbound', 'block').length, 0, 'without credit or a free upload budget, blocks stay on the fast path');
    const stranger = h.peer();
    const early = h.peer({ features: features(), handshakeComplete: false });
    for (const p of [stranger, early]) {
      await h.deliver(p, 'inbound', P.CMD.offers, P.encodeNonce(1n));
      await h.deliver(p, 'inbound', P.CMD.invoice, P.encodeInvoiceRequest({ nonce: 2n, offerId: 'pro', amountMsat: 0n }));
    }
    await sleep(100);
    assert.equal(stranger.pushed.length + early.pushed.length + h.sent.length, 0);
  } finally {
    await h.close();
  }
});

test('busy: requests waiting for a slow backend are bounded per connection; a pass ends and the tier goes', async () => {
  const { h, lnd } = await onLnd({ maxPendingPerPeer: 1, passes: { short: { priceSats: 1, duration: 1 } } });
  try {
    const peer = h.peer({ features: features() });
    lnd.delayMs = 500;
    await h.deliver(peer, 'inbound', P.CMD.invoice, P.encodeInvoiceRequest({ nonce: 1n, offerId: 'short', amountMsat: 0n }));
    await h.deliver(peer, 'inbound', P.CMD.invoice, P.encodeInvoiceRequest({ nonce: 2n, offerId: 'short', amountMsat: 0n }));
    const busy = await answer(h, peer, 2n);
    assert.equal(P.decodeRefuse(Buffer.from(busy.payload!)).code, P.REFUSE.busy);
    const inv = P.decodeInvoiceAnswer(Buffer.from((await answer(h, peer, 1n)).payload!));
    lnd.delayMs = 0;
    const hash = inv.paymentHash.toString('hex');
    lnd.markPaid(hash);
    await h.deliver(peer, 'inbound', P.CMD.claim, P.encodeClaim({ nonce: 3n, paymentHash: inv.paymentHash, claimToken: inv.claimToken, preimage: lnd.invoices.get(hash)!.preimage }));
    const g = P.decodeGrant(Buffer.from((await answer(h, peer, 3n)).payload!));
    assert.equal(g.tier, 'short');
    assert.equal(peer.state.get('tier'), 'short');
    assert.equal(peer.state.get('paywall.paid'), true);
    assert.equal(peer.priority, true, 'marked paid for the proxy (ctx.setPriority): not evicted, keeps a reserved slot');
    // the one-second pass ends: the tier key goes (the sweep runs every 5 s)
    await waitFor(() => !peer.state.has('tier'), 15_000, 'the ended pass to leave peer.state');
    assert.equal(peer.priority, false, 'no longer paid: unmarked');
    await h.deliver(peer, 'inbound', P.CMD.balance, P.encodeNonce(4n));
    assert.equal(P.decodeBalance(Buffer.from((await answer(h, peer, 4n)).payload!)).kind, 'free');
  } finally {
    await h.close();
    await lnd.close();
  }
});

test('expired invoices are asked about: the unpaid one is forgotten, the paid but unclaimed one is kept on disk and still claimable', async () => {
  // unpaid invoices (one per request) stayed in memory and in the store file for a day after they
  // expired, and a paid invoice whose buyer came back after that day was refused as never issued
  const { h, lnd, base } = await onLnd({ invoices: { expiry: 1 } }, createPaywallHook({ settleMarginS: 0 }));
  try {
    const peer = h.peer({ features: features() });
    const paid = await requestInvoice(h, peer, 1n);
    const unpaid = await requestInvoice(h, peer, 2n);
    const paidHash = paid.paymentHash.toString('hex');
    lnd.markPaid(paidHash);
    const journal = `${base.store.file}.invoices`;
    const ops = () => readFileSync(journal, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { op: string; paymentHash: string });
    await waitFor(() => ops().some((o) => o.op === 'forget'), 15_000, 'the unpaid invoice to be forgotten after it expired');
    await waitFor(() => ops().some((o) => o.op === 'paid'), 15_000, 'the paid invoice to be marked paid');
    assert.deepEqual(ops().filter((o) => o.op !== 'add').map((o) => [o.op, o.paymentHash]).sort(), [['forget', unpaid.paymentHash.toString('hex')], ['paid', paidHash]].sort());
    // the buyer comes back after the invoice expired: the grant is still there for it
    await h.deliver(peer, 'inbound', P.CMD.claim, P.encodeClaim({ nonce: 3n, paymentHash: paid.paymentHash, claimToken: paid.claimToken, preimage: lnd.invoices.get(paidHash)!.preimage }));
    assert.equal(P.decodeGrant(Buffer.from((await answer(h, peer, 3n)).payload!)).tier, 'pro');
  } finally {
    await h.close();
    await lnd.close();
  }
});

test('an expired invoice phoenixd still calls open is asked once more before it is forgotten (phoenixd has no expired state; a backend clock may run behind)', async () => {
  const { base } = setup();
  const pw = 'phoenix-pw';
  const phoenixd = await phoenixdStandIn(pw);
  const options = { ...base, backend: { kind: 'phoenixd', url: phoenixd.url, passwordFile: secretFile(`${pw}\n`) }, invoices: { expiry: 1 } };
  const h = await createHookHarness([{ module: createPaywallHook({ settleMarginS: 0, openGraceS: 8 }), options }]);
  try {
    const peer = h.peer({ features: features() });
    const hash = (await requestInvoice(h, peer, 1n)).paymentHash.toString('hex');
    const lookups = () => phoenixd.requests.filter((r) => r.path === `/payments/incoming/${hash}`).length;
    const forgotten = () => readFileSync(`${base.store.file}.invoices`, 'utf8').includes('"op":"forget"');
    await waitFor(() => lookups() >= 1, 15_000, 'the first question about the expired invoice');
    assert.equal(forgotten(), false, 'still open: not forgotten at the first answer');
    await waitFor(forgotten, 20_000, 'the invoice to be forgotten after the second answer');
    assert.equal(lookups(), 2, 'asked twice in all');
  } finally {
    await h.close();
    await phoenixd.close();
  }
});

test('invoices still being created count against the per-address and total bounds', async () => {
  // only the requesting connection reserved a slot while the backend created the invoice: several
  // connections of one address (or many addresses at once) all passed the per-address and total
  // checks and the node created more open invoices than the bounds allow
  const { h, lnd } = await onLnd({ invoices: { perPeer: 3, perAddress: 1, total: 3, rate: 100, burst: 100 } });
  try {
    lnd.delayMs = 300;
    const codes = async (peers: FakePeer[], first: bigint) => {
      for (const [i, p] of peers.entries()) await h.deliver(p, 'inbound', P.CMD.invoice, P.encodeInvoiceRequest({ nonce: first + BigInt(i), offerId: 'pro', amountMsat: 0n }));
      const answers = await Promise.all(peers.map((p, i) => answer(h, p, first + BigInt(i))));
      return answers.map((a) => (a.command === P.CMD.refuse ? P.decodeRefuse(Buffer.from(a.payload!)).code : 0));
    };
    const sameAddress = [1, 2, 3].map(() => h.peer({ features: features(), address: '198.51.100.20' }));
    assert.deepEqual((await codes(sameAddress, 10n)).sort(), [0, P.REFUSE.too_many_invoices, P.REFUSE.too_many_invoices], 'one open invoice per address');
    const others = [21, 22, 23].map((n) => h.peer({ features: features(), address: `198.51.100.${n}` }));
    assert.deepEqual((await codes(others, 20n)).sort(), [0, 0, P.REFUSE.too_many_invoices], 'three open invoices on the proxy in all');
    assert.equal(lnd.invoices.size, 3, 'the node created three invoices');
  } finally {
    await h.close();
    await lnd.close();
  }
});

test('a store that cannot write refuses with internal and the peer stays connected', async () => {
  const { base } = setup();
  const h = await createHookHarness([{ module: MODULE, options: base }]);
  try {
    const stateDir = path.dirname(base.store.file);
    writeFileSync(stateDir, 'a file where the directory should be'); // the store cannot write its file
    const peer = h.peer({ features: features() });
    await h.deliver(peer, 'inbound', P.CMD.invoice, P.encodeInvoiceRequest({ nonce: 9n, offerId: 'pro', amountMsat: 0n }));
    const r = P.decodeRefuse(Buffer.from((await answer(h, peer, 9n)).payload!));
    assert.equal(r.code, P.REFUSE.internal);
    assert.equal(peer.disconnected, null);
    assert.equal(((await h.admin('paywall', 'GET grants')) as { grants: unknown[] }).grants.length, 0);
  } finally {
    await h.close();
  }
});
