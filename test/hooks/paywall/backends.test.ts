/**
 * hooks/paywall/backends: each Lightning backend against its documented-API stand-in (an HTTP(S)
 * server started here that follows LND's, Core Lightning clnrest's, LNbits' or phoenixd's
 * documented REST API, auth and error shapes: see standins.ts; no Lightning node can run on
 * this machine). The dev backend's BOLT11 invoices are checked with an INDEPENDENT decoder:
 * bitcoinjs `bolt11` (it recovers the signer's key from the signature and checks it against the
 * payee key tag), plus node:crypto for the expected public key; the dev backend signs with
 * @atomiqlabs/bolt11.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, createHash } from 'node:crypto';
import bolt11 from 'bolt11';
import { createBackend, BackendError, type LightningBackend } from '../../../hooks/paywall/backends/index.js';
import { createDevBackend } from '../../../hooks/paywall/backends/dev.js';
import { clnStandIn, lnbitsStandIn, lndStandIn, phoenixdStandIn, secretFile, selfSignedCert, type StandIn } from './standins.js';

const MACAROON = Buffer.from('0201036c6e6402f801030a10', 'hex'); // bytes of a macaroon file; sent as hex
const TIMEOUT = 5000;

async function roundTrip(b: LightningBackend, s: StandIn): Promise<void> {
  const inv = await b.createInvoice(21_000n, 'paywall test', 600);
  assert.match(inv.paymentHash, /^[0-9a-f]{64}$/);
  assert.ok(s.invoices.has(inv.paymentHash), 'the hash we report is the one the node created');
  assert.equal(s.invoices.get(inv.paymentHash)!.amountMsat, 21_000n);
  assert.equal(s.invoices.get(inv.paymentHash)!.expiry, 600, 'expiry is always sent');
  assert.ok(inv.expiresAt >= Math.floor(Date.now() / 1000) + 590);
  assert.deepEqual(await b.lookupInvoice(inv.paymentHash), { state: 'open', amountPaidMsat: 0n });
  s.markPaid(inv.paymentHash);
  assert.deepEqual(await b.lookupInvoice(inv.paymentHash), { state: 'settled', amountPaidMsat: 21_000n });
  assert.equal((await b.lookupInvoice('ab'.repeat(32))).state, 'unknown');
}

test('LND REST: macaroon header in hex, TLS pinned to tls.cert, base64 r_hash, 500 "unable to locate invoice" is unknown', async () => {
  const cert = selfSignedCert();
  const s = await lndStandIn(cert, MACAROON.toString('hex'));
  try {
    const b = createBackend({ kind: 'lnd', url: s.url, macaroonFile: secretFile(MACAROON), tlsCertFile: cert.certFile }, 'regtest', TIMEOUT);
    await roundTrip(b, s);
    const create = s.requests.find((r) => r.path === '/v1/invoices')!;
    assert.equal(create.headers['grpc-metadata-macaroon'], MACAROON.toString('hex'));
    assert.deepEqual(Object.keys(JSON.parse(create.body)).sort(), ['expiry', 'memo', 'value_msat'], 'value_msat only (value and value_msat are exclusive)');
    assert.ok(s.requests.some((r) => /^\/v1\/invoice\/[0-9a-f]{64}$/.test(r.path)), 'lookup by hex path');

    // a wrong macaroon: LND answers 500 with a message; that is an error, never "unknown"
    const wrong = createBackend({ kind: 'lnd', url: s.url, macaroonFile: secretFile(Buffer.from('00', 'hex')), tlsCertFile: cert.certFile }, 'regtest', TIMEOUT);
    await assert.rejects(wrong.lookupInvoice('cd'.repeat(32)), (e: BackendError) => e.kind === 'rejected' && /signature mismatch/.test(e.message));

    // pinning: another self-signed certificate is refused
    const other = selfSignedCert();
    const pinnedElsewhere = createBackend({ kind: 'lnd', url: s.url, macaroonFile: secretFile(MACAROON), tlsCertFile: other.certFile }, 'regtest', TIMEOUT);
    await assert.rejects(pinnedElsewhere.createInvoice(1000n, 'x', 60), (e: BackendError) => e instanceof BackendError && e.kind === 'auth');
  } finally {
    await s.close();
  }
});

test('Core Lightning clnrest: Rune header, POST /v1/listinvoices with payment_hash in the body, never a query string', async () => {
  const cert = selfSignedCert();
  const s = await clnStandIn(cert, 'rune-abc');
  try {
    const b = createBackend({ kind: 'cln', url: s.url, runeFile: secretFile('rune-abc\n'), tlsCertFile: cert.certFile }, 'regtest', TIMEOUT);
    // another invoice first: a backend that dropped the hash would read this one
    const decoy = await b.createInvoice(5_000n, 'decoy', 600);
    s.markPaid(decoy.paymentHash);
    await roundTrip(b, s);
    const lists = s.requests.filter((r) => r.path.startsWith('/v1/listinvoices'));
    assert.ok(lists.length > 0);
    for (const r of lists) {
      assert.equal(r.method, 'POST');
      assert.equal(r.path, '/v1/listinvoices', 'no query string');
      assert.match(JSON.parse(r.body).payment_hash, /^[0-9a-f]{64}$/);
    }
    const labels = s.requests.filter((r) => r.path === '/v1/invoice').map((r) => JSON.parse(r.body).label);
    assert.equal(new Set(labels).size, labels.length, 'unique labels');
    const badRune = createBackend({ kind: 'cln', url: s.url, runeFile: secretFile('nope'), tlsCertFile: cert.certFile }, 'regtest', TIMEOUT);
    await assert.rejects(badRune.createInvoice(1000n, 'x', 60), (e: BackendError) => e.kind === 'auth' && e.status === 401);
  } finally {
    await s.close();
  }
});

test('LNbits: X-Api-Key, whole sats only, 404 is unknown', async () => {
  const s = await lnbitsStandIn('invoice-key-1');
  try {
    const b = createBackend({ kind: 'lnbits', url: s.url, apiKeyFile: secretFile('invoice-key-1') }, 'regtest', TIMEOUT);
    await roundTrip(b, s);
    await assert.rejects(b.createInvoice(1500n, 'x', 60), /whole number of satoshis/);
    const bad = createBackend({ kind: 'lnbits', url: s.url, apiKeyFile: secretFile('wrong') }, 'regtest', TIMEOUT);
    await assert.rejects(bad.lookupInvoice('ab'.repeat(32)), (e: BackendError) => e.kind === 'auth');
  } finally {
    await s.close();
  }
});

test('phoenixd: basic auth with an empty user, form-encoded createinvoice, 404 is unknown', async () => {
  const s = await phoenixdStandIn('limited-pw');
  try {
    const b = createBackend({ kind: 'phoenixd', url: s.url, passwordFile: secretFile('limited-pw\n') }, 'regtest', TIMEOUT);
    await roundTrip(b, s);
    const bad = createBackend({ kind: 'phoenixd', url: s.url, passwordFile: secretFile('nope') }, 'regtest', TIMEOUT);
    await assert.rejects(bad.createInvoice(1000n, 'x', 60), (e: BackendError) => e.kind === 'auth');
  } finally {
    await s.close();
  }
});

test('a backend that is down or slow fails with unreachable or timeout, quickly and clearly', async () => {
  const s = await lnbitsStandIn('k');
  const url = s.url;
  s.delayMs = 2000;
  const slow = createBackend({ kind: 'lnbits', url, apiKeyFile: secretFile('k') }, 'regtest', 200);
  await assert.rejects(slow.createInvoice(1000n, 'x', 60), (e: BackendError) => e.kind === 'timeout');
  await s.close();
  const down = createBackend({ kind: 'lnbits', url, apiKeyFile: secretFile('k') }, 'regtest', TIMEOUT);
  await assert.rejects(down.createInvoice(1000n, 'x', 60), (e: BackendError) => e.kind === 'unreachable');
});

test('dev backend: real lnbcrt BOLT11 that an independent decoder verifies; settle reveals the preimage', async () => {
  const key = 'e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734';
  const dev = createDevBackend({ network: 'regtest', privateKeyHex: key });
  const ecdh = createECDH('secp256k1');
  ecdh.setPrivateKey(Buffer.from(key, 'hex'));
  assert.equal(dev.nodeKey, ecdh.getPublicKey('hex', 'compressed'));
  for (const msat of [1n, 1_000n, 2_000_000n, 123_456_789n]) {
    const inv = await dev.createInvoice(msat, `pass ${msat}`, 900);
    assert.match(inv.bolt11, /^lnbcrt/);
    const d = bolt11.decode(inv.bolt11, { bech32: 'bcrt', pubKeyHash: 0x6f, scriptHash: 0xc4, validWitnessVersions: [0, 1] });
    assert.equal(d.payeeNodeKey, dev.nodeKey, 'the key recovered from the signature is the dev key');
    assert.equal(d.millisatoshis, msat.toString());
    const tags = Object.fromEntries(d.tags.map((t) => [t.tagName, t.data]));
    assert.equal(tags.payment_hash, inv.paymentHash);
    assert.equal(tags.expire_time, 900);
    assert.equal(tags.description, `pass ${msat}`);
    assert.equal(d.timestamp! + 900, inv.expiresAt);
  }
  // a flipped character breaks the checksum or the signature
  const inv = await dev.createInvoice(5000n, 'x', 60);
  const i = inv.bolt11.length - 20;
  const tampered = inv.bolt11.slice(0, i) + (inv.bolt11[i] === 'q' ? 'p' : 'q') + inv.bolt11.slice(i + 1);
  assert.throws(() => bolt11.decode(tampered, { bech32: 'bcrt', pubKeyHash: 0x6f, scriptHash: 0xc4, validWitnessVersions: [0, 1] }));

  assert.equal((await dev.lookupInvoice(inv.paymentHash)).state, 'open');
  const preimage = dev.pay(inv.bolt11);
  assert.equal(createHash('sha256').update(Buffer.from(preimage, 'hex')).digest('hex'), inv.paymentHash);
  assert.deepEqual(await dev.lookupInvoice(inv.paymentHash), { state: 'settled', amountPaidMsat: 5000n });
  assert.equal((await dev.lookupInvoice('00'.repeat(32))).state, 'unknown');
  assert.throws(() => dev.settle('11'.repeat(32)), /no invoice/);
});
