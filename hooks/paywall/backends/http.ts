/**
 * One JSON request over HTTP or HTTPS for the Lightning backends: node:http(s) with the backend's
 * own certificate as the only trusted CA (LND's tls.cert, clnrest's certificate), a timeout, and
 * errors sorted into BackendError kinds. No connection pooling: invoice calls are rare.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { BackendError } from './types.js';

export interface JsonRequest {
  backend: string;
  url: URL;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** a JSON value (sent as application/json) or a form (application/x-www-form-urlencoded) */
  json?: unknown;
  form?: Record<string, string>;
  /** PEM of the certificate to trust for https (pinned: the system CAs are not used) */
  ca?: Buffer;
  timeoutMs: number;
}

export interface JsonAnswer {
  status: number;
  /** the parsed body, or null when it was not JSON */
  body: unknown;
  text: string;
}

/** Bodies larger than this are refused: no backend answer we read comes near it. */
const MAX_BODY = 1 << 20;

export function requestJson(r: JsonRequest): Promise<JsonAnswer> {
  const headers: Record<string, string> = { accept: 'application/json', ...r.headers };
  let body: string | undefined;
  if (r.json !== undefined) {
    body = JSON.stringify(r.json);
    headers['content-type'] = 'application/json';
  } else if (r.form) {
    body = new URLSearchParams(r.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  const isHttps = r.url.protocol === 'https:';
  const options: https.RequestOptions = { method: r.method, headers, agent: false, timeout: r.timeoutMs };
  if (isHttps && r.ca) options.ca = r.ca;
  return new Promise<JsonAnswer>((resolve, reject) => {
    const req = (isHttps ? https : http).request(r.url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy(new BackendError(r.backend, 'protocol', `answer larger than ${MAX_BODY} bytes`));
        else chunks.push(c);
      });
      res.on('error', (e) => reject(sorted(r.backend, e)));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = null;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {
          /* not JSON: callers decide from the status */
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, text });
      });
    });
    req.on('timeout', () => req.destroy(new BackendError(r.backend, 'timeout', `no answer from ${r.url.origin} within ${r.timeoutMs} ms`)));
    req.on('error', (e) => reject(sorted(r.backend, e)));
    req.end(body);
  });
}

function sorted(backend: string, e: Error): BackendError {
  if (e instanceof BackendError) return e;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  // a certificate that is not the pinned one is a configuration error, not an outage
  if (/CERT|SELF_SIGNED|TLS|SSL/i.test(code)) return new BackendError(backend, 'auth', `TLS: ${e.message} (is the certificate file the backend's own?)`);
  return new BackendError(backend, 'unreachable', `${code || 'error'}: ${e.message}`);
}

/** The message of an error answer, whichever of the usual JSON shapes the backend uses. */
export function errorText(a: JsonAnswer): string {
  const b = a.body as Record<string, unknown> | null;
  const m = b && (b.message ?? b.detail ?? b.error);
  return typeof m === 'string' ? m : typeof m === 'object' && m !== null ? JSON.stringify(m) : a.text.slice(0, 200);
}

/** Throw the BackendError for a non-2xx answer: 401/403 are auth, the rest rejected. */
export function failStatus(backend: string, a: JsonAnswer, what: string): never {
  const kind = a.status === 401 || a.status === 403 ? 'auth' : 'rejected';
  throw new BackendError(backend, kind, `${what}: HTTP ${a.status}: ${errorText(a)}`, a.status);
}

/** A base URL as given in the options, with a path appended (keeping any prefix path). */
export function endpoint(base: string, path: string): URL {
  const u = new URL(base);
  u.pathname = u.pathname.replace(/\/+$/, '') + path;
  return u;
}

/** What every HTTP backend's options share. */
export interface HttpBackendOptions {
  url: string;
  /** PEM of the backend's certificate, pinned for https */
  tlsCertFile?: string;
  /** per request (default 60 s, as the config's): a JavaScript caller that leaves it out still gets one */
  timeoutMs?: number;
}

export const DEFAULT_HTTP_TIMEOUT_MS = 60_000;

export type Call = (method: 'GET' | 'POST', path: string, body?: { json?: unknown; form?: Record<string, string> }) => Promise<JsonAnswer>;

/** A caller for one backend: its base URL, auth headers, pinned certificate (read once, now) and timeout. */
export function backendClient(backend: string, o: HttpBackendOptions, headers: Record<string, string>): Call {
  const ca = o.tlsCertFile ? readFileSync(o.tlsCertFile) : undefined;
  return (method, path, body = {}) => requestJson({ backend, url: endpoint(o.url, path), method, ...body, ca, headers, timeoutMs: o.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS });
}
