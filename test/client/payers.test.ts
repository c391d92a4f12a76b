/**
 * The payers against documented-API stand-ins: no Lightning node can run here, so each backend's
 * paying endpoint is an HTTP(S) server started by this test that follows that product's
 * documented REST API, auth and error shapes:
 *   - LND: POST /v2/router/send (routerrpc SendPaymentV2: a stream of {"result": Payment} lines,
 *     status IN_FLIGHT → SUCCEEDED with payment_preimage hex, or FAILED with failure_reason) and
 *     POST /v1/channels/transactions (SendPaymentSync: payment_error, payment_preimage base64);
 *     Grpc-Metadata-macaroon; missing macaroon → 500 "expected 1 macaroon, got 0"; TLS tls.cert.
 *   - Core Lightning clnrest: POST /v1/pay {bolt11, maxfee} with a Rune; status complete with
 *     payment_preimage hex; a failed pay is HTTP 500 {code, message}; a bad rune 401.
 *   - LNbits: POST /api/v1/payments {out:true, bolt11} with the admin X-Api-Key → 201
 *     {payment_hash}; GET /api/v1/payments/{hash} → {paid, preimage}; errors {detail}.
 *   - phoenixd: POST /payinvoice (form invoice) with Basic auth (empty user) → {paymentPreimage,
 *     routingFeeSat}; wrong password 401.
 * The invoices paid are real BOLT11 from the dev backend; "paying" settles them there, which is
 * where the stand-in learns the preimage a real node would learn by routing the payment.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createDevBackend } from '../../hooks/paywall/backends/dev.js';
import { PayerError, createClnPayer, createLndPayer, createLnbitsPayer, createPhoenixdPayer, type Payer } from '../../src/client/index.js';
import { secretFile, selfSignedCert, type TestCert } from '../hooks/paywall/standins.js';

const dev = createDevBackend({ network: 'regtest', privateKeyHex: createHash('sha256').update('payers.test.ts').digest('hex') });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let cert: TestCert;
let otherCert: TestCert;
const servers: http.Server[] = [];
/** when set, the next payment fails with this reason */
let failNext: string | null = null;

type Reply = { status: number; json?: unknown; text?: string };
async function standIn(handler: (req: http.IncomingMessage, body: string) => Reply, tls?: TestCert): Promise<string> {
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const r = handler(req, body);
      res.writeHead(r.status, { 'content-type': r.json !== undefined ? 'application/json' : 'text/plain' });
      res.end(r.json !== undefined ? (typeof r.json === 'string' ? r.json : JSON.stringify(r.json)) : (r.text ?? ''));
    });
  };
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, listener) : http.createServer(listener);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** pay as a Lightning node would: the preimage comes back once the payee settles */
function settle(bolt11: string): { preimage: string; hash: string } | { failure: string } {
  if (failNext) {
    const failure = failNext;
    failNext = null;
    return { failure };
  }
  const preimage = dev.pay(bolt11);
  return { preimage, hash: sha(Buffer.from(preimage, 'hex')) };
}

const MACAROON = 'abcdef0123';
const RUNE = 'rune-for-pay-0123456789';
const LNBITS_ADMIN = 'lnbits-admin-key';
const PHOENIX_PASSWORD = 'phoenix-full-password';
let lndUrl = '';
let clnUrl = '';
let lnbitsUrl = '';
let phoenixUrl = '';
const lnbitsPaid = new Map<string, string>();
/** timeout_seconds of each SendPaymentV2 the LND stand-in saw */
const lndTimeouts: unknown[] = [];

before(async () => {
  cert = selfSignedCert();
  otherCert = selfSignedCert();
  lndUrl = await standIn((req, body) => {
    const mac = req.headers['grpc-metadata-macaroon'];
    if (mac === undefined) return { status: 500, json: { code: 2, message: 'expected 1 macaroon, got 0', details: [] } };
    if (mac !== MACAROON) return { status: 500, json: { code: 2, message: 'verification failed: signature mismatch after caveat verification', details: [] } };
    const b = JSON.parse(body) as { payment_request?: string; timeout_seconds?: unknown };
    const r = settle(b.payment_request ?? '');
    if (req.url === '/v2/router/send') {
      lndTimeouts.push(b.timeout_seconds);
      const inflight = JSON.stringify({ result: { payment_hash: '', status: 'IN_FLIGHT', failure_reason: 'FAILURE_REASON_NONE' } });
      const last = 'failure' in r ? { status: 'FAILED', failure_reason: r.failure, fee_msat: '0' } : { payment_hash: r.hash, status: 'SUCCEEDED', payment_preimage: r.preimage, fee_msat: '1000', failure_reason: 'FAILURE_REASON_NONE' };
      return { status: 200, json: `${inflight}\n${JSON.stringify({ result: last })}\n` };
    }
    if (req.url === '/v1/channels/transactions') {
      if ('failure' in r) return { status: 200, json: { payment_error: r.failure, payment_preimage: '', payment_route: null } };
      return { status: 200, json: { payment_error: '', payment_preimage: Buffer.from(r.preimage, 'hex').toString('base64'), payment_hash: Buffer.from(r.hash, 'hex').toString('base64'), payment_route: { total_fees_msat: '2000' } } };
    }
    return { status: 404, json: { code: 5, message: 'Not Found' } };
  }, cert);
  clnUrl = await standIn((req, body) => {
    if (req.headers.rune !== RUNE) return { status: 401, json: { code: 1502, message: 'Not authorized: Not derived from master' } };
    if (req.url !== '/v1/pay') return { status: 404, json: { code: -32601, message: 'Unknown command' } };
    const r = settle((JSON.parse(body) as { bolt11?: string }).bolt11 ?? '');
    if ('failure' in r) return { status: 500, json: { code: 210, message: `Ran out of routes to try after 3 attempts: ${r.failure}` } };
    return { status: 201, json: { payment_preimage: r.preimage, payment_hash: r.hash, status: 'complete', amount_msat: 2_000_000, amount_sent_msat: 2_000_500, parts: 1 } };
  }, cert);
  lnbitsUrl = await standIn((req, body) => {
    if (req.headers['x-api-key'] !== LNBITS_ADMIN) return { status: 401, json: { detail: 'Invalid adminkey.' } };
    const m = /^\/api\/v1\/payments\/([0-9a-f]{64})$/.exec(req.url ?? '');
    if (req.method === 'GET' && m) {
      const p = lnbitsPaid.get(m[1]!);
      return p ? { status: 200, json: { paid: true, preimage: p, details: { fee: -1000 } } } : { status: 404, json: { detail: 'Payment does not exist.' } };
    }
    const b = JSON.parse(body) as { out?: boolean; bolt11?: string };
    if (req.method !== 'POST' || req.url !== '/api/v1/payments' || b.out !== true) return { status: 400, json: { detail: 'bad request' } };
    const r = settle(b.bolt11 ?? '');
    if ('failure' in r) return { status: 520, json: { detail: `Payment failed: ${r.failure}` } };
    lnbitsPaid.set(r.hash, r.preimage);
    return { status: 201, json: { payment_hash: r.hash, checking_id: r.hash } };
  });
  phoenixUrl = await standIn((req, body) => {
    if (req.headers.authorization !== `Basic ${Buffer.from(`:${PHOENIX_PASSWORD}`).toString('base64')}`) return { status: 401, text: 'Invalid authentication (use basic auth with the http password set in phoenix.conf)' };
    if (req.url !== '/payinvoice') return { status: 404, text: 'not found' };
    const r = settle(new URLSearchParams(body).get('invoice') ?? '');
    if ('failure' in r) return { status: 200, json: { reason: r.failure } };
    return { status: 200, json: { recipientAmountSat: 2000, routingFeeSat: 3, paymentId: 'x', paymentHash: r.hash, paymentPreimage: r.preimage } };
  });
});

after(() => {
  for (const s of servers) s.close();
});

async function invoice(): Promise<{ bolt11: string; hash: string }> {
  const i = await dev.createInvoice(2_000_000n, 'payers test', 600);
  return { bolt11: i.bolt11, hash: i.paymentHash };
}

async function paysAndFails(p: Payer, fee: bigint): Promise<void> {
  const i = await invoice();
  const r = await p.pay(i.bolt11, 2_000_000n, 10_000n);
  assert.equal(sha(r.preimage), i.hash, `${p.kind}: the preimage is the invoice's`);
  assert.equal(r.feeMsat, fee, `${p.kind}: fee`);
  failNext = 'FAILURE_REASON_NO_ROUTE';
  const j = await invoice();
  await assert.rejects(p.pay(j.bolt11, 2_000_000n, 10_000n), (e: unknown) => e instanceof PayerError && e.definite && /NO_ROUTE/.test(e.message), `${p.kind}: a failed payment is definite`);
}

const opts = (url: string, tls?: TestCert) => ({ url, timeoutMs: 10_000, ...(tls ? { tlsCertFile: tls.certFile } : {}) });

test('LND: /v2/router/send stream and /v1/channels/transactions; macaroon and pinned TLS', async () => {
  const mac = secretFile(Buffer.from(MACAROON, 'hex'));
  await paysAndFails(createLndPayer({ ...opts(lndUrl, cert), macaroonFile: mac }), 1000n);
  await paysAndFails(createLndPayer({ ...opts(lndUrl, cert), macaroonFile: mac, api: 'sync' }), 2000n);
  const i = await invoice();
  await assert.rejects(createLndPayer({ ...opts(lndUrl, cert), macaroonFile: secretFile(Buffer.from('00', 'hex')) }).pay(i.bolt11, 2_000_000n, 0n), (e: unknown) => e instanceof PayerError && e.definite && /signature mismatch/.test(e.message));
  await assert.rejects(createLndPayer({ ...opts(lndUrl, otherCert), macaroonFile: mac }).pay(i.bolt11, 2_000_000n, 0n), (e: unknown) => e instanceof PayerError && e.definite && /TLS/.test(e.message), 'another certificate is refused before anything is sent');
});

test('a payer made without timeoutMs (JavaScript callers) still has one: 60 s, and LND is told 59 s', async () => {
  // it was required only by the types: left out, LND got timeout_seconds NaN (null in JSON) and requests had no timeout
  const mac = secretFile(Buffer.from(MACAROON, 'hex'));
  const i = await invoice();
  const { timeoutMs: _t, ...noTimeout } = opts(lndUrl, cert);
  lndTimeouts.length = 0;
  const r = await createLndPayer({ ...noTimeout, macaroonFile: mac }).pay(i.bolt11, 2_000_000n, 10_000n);
  assert.equal(sha(r.preimage), i.hash);
  assert.deepEqual(lndTimeouts, [59]);
});

test('Core Lightning clnrest: /v1/pay with a rune', async () => {
  await paysAndFails(createClnPayer({ ...opts(clnUrl, cert), runeFile: secretFile(RUNE) }), 500n);
  const i = await invoice();
  await assert.rejects(createClnPayer({ ...opts(clnUrl, cert), runeFile: secretFile('wrong') }).pay(i.bolt11, 2_000_000n, 0n), (e: unknown) => e instanceof PayerError && e.definite && /401/.test(e.message));
});

test('LNbits: out:true with the admin key, then the payment\'s preimage', async () => {
  await paysAndFails(createLnbitsPayer({ ...opts(lnbitsUrl), adminKeyFile: secretFile(LNBITS_ADMIN) }), 1000n);
  const i = await invoice();
  await assert.rejects(createLnbitsPayer({ ...opts(lnbitsUrl), adminKeyFile: secretFile('invoice-key') }).pay(i.bolt11, 2_000_000n, 0n), (e: unknown) => e instanceof PayerError && /Invalid adminkey/.test(e.message));
});

test('phoenixd: /payinvoice with basic auth', async () => {
  await paysAndFails(createPhoenixdPayer({ ...opts(phoenixUrl), passwordFile: secretFile(PHOENIX_PASSWORD) }), 3000n);
  const i = await invoice();
  await assert.rejects(createPhoenixdPayer({ ...opts(phoenixUrl), passwordFile: secretFile('limited') }).pay(i.bolt11, 2_000_000n, 0n), (e: unknown) => e instanceof PayerError && e.definite && /401/.test(e.message));
});

test('unreachable payer: definite (nothing was sent); a payer that hangs up mid-request: outcome unknown', async () => {
  const i = await invoice();
  await assert.rejects(createLnbitsPayer({ url: 'http://127.0.0.1:1', timeoutMs: 5000, adminKeyFile: secretFile(LNBITS_ADMIN) }).pay(i.bolt11, 2_000_000n, 0n), (e: unknown) => e instanceof PayerError && e.definite);
  const hangup = http.createServer((req) => req.socket.destroy());
  servers.push(hangup);
  await new Promise<void>((r) => hangup.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(hangup.address() as AddressInfo).port}`;
  await assert.rejects(createPhoenixdPayer({ url, timeoutMs: 5000, passwordFile: secretFile(PHOENIX_PASSWORD) }).pay(i.bolt11, 2_000_000n, 0n), (e: unknown) => e instanceof PayerError && !e.definite);
});
