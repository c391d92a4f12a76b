/**
 * Documented-API stand-ins for Lightning backends that cannot run on this machine (no Lightning
 * node can). Each is a real HTTP(S) server following that product's documented REST API, its
 * auth and its error shapes, with invoices in memory and a `markPaid` the test calls where a
 * real payer would pay:
 *   - LND REST (lnrpc/lightning.yaml; lightning.engineering/api-docs add-invoice, lookup-invoice):
 *     POST /v1/invoices, GET /v1/invoice/{r_hash hex}, Grpc-Metadata-macaroon, base64 bytes,
 *     int64 as strings, unknown hash → 500 {code:2,message:"unable to locate invoice"}, missing
 *     macaroon → 500 "expected 1 macaroon, got 0" (lnd#6411).
 *   - Core Lightning clnrest (doc/developers-guide/app-development/rest.md, lightning-invoice(7),
 *     lightning-listinvoices(7)): POST /v1/<method>, Rune header, query strings ignored (a GET or
 *     POST without payment_hash lists every invoice), bad rune → 401.
 *   - LNbits (/api/v1/payments): X-Api-Key, 201 on create, 404 {"detail": ...} when unknown.
 *   - phoenixd (phoenix.acinq.co server api): Basic auth with empty user, form-encoded
 *     /createinvoice, /payments/incoming/{hash} with 404 when unknown.
 * The BOLT11 strings they return are placeholders: these products' invoice encoding is not
 * under test here (the dev backend's is, with an independent decoder).
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';

export interface TestCert {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/** A self-signed certificate for 127.0.0.1/localhost made with openssl, as LND makes its tls.cert. */
export function selfSignedCert(dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-paywall-cert-'))): TestCert {
  const keyFile = path.join(dir, 'tls.key');
  const certFile = path.join(dir, 'tls.cert');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

export function secretFile(content: string | Buffer): string {
  const f = path.join(mkdtempSync(path.join(os.tmpdir(), 'bhp-paywall-secret-')), 'secret');
  writeFileSync(f, content, { mode: 0o600 });
  return f;
}

interface Inv {
  hash: string;
  preimage: Buffer;
  amountMsat: bigint;
  memo: string;
  expiry: number;
  created: number;
  paidMsat: bigint | null;
  label: string;
}

export interface StandIn {
  url: string;
  /** requests seen: method, path (with query), headers */
  requests: { method: string; path: string; headers: http.IncomingHttpHeaders; body: string }[];
  invoices: Map<string, Inv>;
  markPaid(hash: string, msat?: bigint): void;
  /** answer every request after `ms` (a slow backend) */
  delayMs: number;
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, body: string, inv: Map<string, Inv>) => { status: number; json?: unknown; text?: string };

function newInvoice(amountMsat: bigint, memo: string, expiry: number, label = ''): Inv {
  const preimage = randomBytes(32);
  return { hash: createHash('sha256').update(preimage).digest('hex'), preimage, amountMsat, memo, expiry, created: Math.floor(Date.now() / 1000), paidMsat: null, label };
}

async function serve(handler: Handler, tls?: TestCert): Promise<StandIn> {
  const invoices = new Map<string, Inv>();
  const requests: StandIn['requests'] = [];
  const s: StandIn = {
    url: '',
    requests,
    invoices,
    delayMs: 0,
    markPaid(hash, msat) {
      const i = invoices.get(hash);
      if (!i) throw new Error(`stand-in: no invoice ${hash}`);
      i.paidMsat = msat ?? i.amountMsat;
    },
    close: async () => {},
  };
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      const answer = () => {
        if (res.destroyed) return;
        const a = handler(req, body, invoices);
        res.writeHead(a.status, { 'content-type': a.json !== undefined ? 'application/json' : 'text/plain' });
        res.end(a.json !== undefined ? JSON.stringify(a.json) : (a.text ?? ''));
      };
      if (s.delayMs > 0) setTimeout(answer, s.delayMs).unref();
      else answer();
    });
  };
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, listener) : http.createServer(listener);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  s.url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  s.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return s;
}

const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

/** LND REST, documented-API stand-in. */
export function lndStandIn(tls: TestCert, macaroonHex: string): Promise<StandIn> {
  return serve((req, body, invoices) => {
    const mac = req.headers['grpc-metadata-macaroon'];
    if (mac === undefined) return { status: 500, json: { code: 2, message: 'expected 1 macaroon, got 0', details: [] } };
    if (mac !== macaroonHex) return { status: 500, json: { code: 2, message: 'verification failed: signature mismatch after caveat verification', details: [] } };
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST' && url.pathname === '/v1/invoices') {
      const b = JSON.parse(body) as { value?: string; value_msat?: string; memo?: string; expiry?: string };
      if (b.value !== undefined && b.value_msat !== undefined) return { status: 500, json: { code: 2, message: 'value and value_msat are mutually exclusive', details: [] } };
      const msat = b.value_msat !== undefined ? BigInt(b.value_msat) : BigInt(b.value ?? '0') * 1000n;
      const inv = newInvoice(msat, b.memo ?? '', Number(b.expiry ?? '86400'));
      invoices.set(inv.hash, inv);
      return { status: 200, json: { r_hash: b64(inv.hash), payment_request: `lnbcrt-standin-${inv.hash}`, add_index: String(invoices.size), payment_addr: randomBytes(32).toString('base64') } };
    }
    const m = /^\/v1\/invoice\/([0-9a-f]{64})$/.exec(url.pathname);
    if (req.method === 'GET' && m) {
      const inv = invoices.get(m[1]!);
      if (!inv) return { status: 500, json: { code: 2, message: 'unable to locate invoice', details: [] } };
      return {
        status: 200,
        json: {
          memo: inv.memo,
          r_hash: b64(inv.hash),
          r_preimage: inv.preimage.toString('base64'),
          value_msat: inv.amountMsat.toString(),
          settled: inv.paidMsat !== null,
          // LND cancels an invoice that expired unpaid
          state: inv.paidMsat !== null ? 'SETTLED' : inv.created + inv.expiry < Date.now() / 1000 ? 'CANCELED' : 'OPEN',
          amt_paid_msat: (inv.paidMsat ?? 0n).toString(),
          creation_date: String(inv.created),
          expiry: String(inv.expiry),
        },
      };
    }
    return { status: 404, text: 'Not Found' };
  }, tls);
}

/** Core Lightning clnrest, documented-API stand-in. */
export function clnStandIn(tls: TestCert, rune: string): Promise<StandIn> {
  return serve((req, body, invoices) => {
    if (req.headers.rune !== rune) return { status: 401, json: { code: 1501, message: 'Not authorized: Not derived from master' } };
    const url = new URL(req.url ?? '/', 'http://x'); // the query string is ignored, as clnrest does
    const params = (body ? JSON.parse(body) : {}) as Record<string, unknown>;
    if (req.method === 'POST' && url.pathname === '/v1/invoice') {
      const label = String(params.label);
      if ([...invoices.values()].some((i) => i.label === label)) return { status: 500, json: { code: 900, message: 'Duplicate label' } };
      const inv = newInvoice(BigInt(Number(params.amount_msat)), String(params.description), Number(params.expiry ?? 604800), label);
      invoices.set(inv.hash, inv);
      return { status: 201, json: { payment_hash: inv.hash, expires_at: inv.created + inv.expiry, bolt11: `lnbcrt-standin-${inv.hash}`, payment_secret: randomBytes(32).toString('hex'), created_index: invoices.size } };
    }
    if (url.pathname === '/v1/listinvoices') {
      const want = typeof params.payment_hash === 'string' ? params.payment_hash : null;
      const list = [...invoices.values()].filter((i) => want === null || i.hash === want);
      return {
        status: 201,
        json: {
          invoices: list.map((i) => ({
            label: i.label,
            payment_hash: i.hash,
            amount_msat: Number(i.amountMsat),
            status: i.paidMsat !== null ? 'paid' : i.created + i.expiry < Date.now() / 1000 ? 'expired' : 'unpaid',
            ...(i.paidMsat !== null ? { amount_received_msat: Number(i.paidMsat), payment_preimage: i.preimage.toString('hex') } : {}),
            expires_at: i.created + i.expiry,
          })),
        },
      };
    }
    return { status: 404, json: { code: -32601, message: `Unknown command` } };
  }, tls);
}

/** LNbits, documented-API stand-in. */
export function lnbitsStandIn(apiKey: string, tls?: TestCert): Promise<StandIn> {
  return serve((req, body, invoices) => {
    if (req.headers['x-api-key'] !== apiKey) return { status: 401, json: { detail: 'Invalid key' } };
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST' && url.pathname === '/api/v1/payments') {
      const b = JSON.parse(body) as { out?: boolean; amount?: number; memo?: string; expiry?: number; unit?: string };
      if (b.out !== false || b.unit !== 'sat' || !Number.isInteger(b.amount)) return { status: 400, json: { detail: 'bad request' } };
      const inv = newInvoice(BigInt(b.amount!) * 1000n, b.memo ?? '', b.expiry ?? 3600);
      invoices.set(inv.hash, inv);
      return { status: 201, json: { payment_hash: inv.hash, payment_request: `lnbcrt-standin-${inv.hash}`, checking_id: inv.hash } };
    }
    const m = /^\/api\/v1\/payments\/([0-9a-f]{64})$/.exec(url.pathname);
    if (req.method === 'GET' && m) {
      const inv = invoices.get(m[1]!);
      if (!inv) return { status: 404, json: { detail: 'Payment does not exist.' } };
      const paid = inv.paidMsat !== null;
      return { status: 200, json: { paid, preimage: paid ? inv.preimage.toString('hex') : null, details: { amount: Number(inv.paidMsat ?? inv.amountMsat), status: paid ? 'success' : 'pending', payment_hash: inv.hash } } };
    }
    return { status: 404, json: { detail: 'Not Found' } };
  }, tls);
}

/** phoenixd, documented-API stand-in. */
export function phoenixdStandIn(password: string): Promise<StandIn> {
  return serve((req, body, invoices) => {
    if (req.headers.authorization !== `Basic ${Buffer.from(`:${password}`).toString('base64')}`) return { status: 401, text: 'Unauthorized' };
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST' && url.pathname === '/createinvoice') {
      if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return { status: 400, text: 'form expected' };
      const f = new URLSearchParams(body);
      const inv = newInvoice(BigInt(f.get('amountSat') ?? '0') * 1000n, f.get('description') ?? '', Number(f.get('expirySeconds') ?? 3600));
      invoices.set(inv.hash, inv);
      return { status: 200, json: { amountSat: Number(inv.amountMsat / 1000n), paymentHash: inv.hash, serialized: `lnbcrt-standin-${inv.hash}` } };
    }
    const m = /^\/payments\/incoming\/([0-9a-f]{64})$/.exec(url.pathname);
    if (req.method === 'GET' && m) {
      const inv = invoices.get(m[1]!);
      if (!inv) return { status: 404, text: 'Not Found' };
      const paid = inv.paidMsat !== null;
      return { status: 200, json: { paymentHash: inv.hash, preimage: inv.preimage.toString('hex'), isPaid: paid, receivedSat: paid ? Number(inv.paidMsat! / 1000n) : 0, fees: 0, createdAt: inv.created * 1000 } };
    }
    return { status: 404, text: 'Not Found' };
  });
}
