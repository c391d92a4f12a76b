import * as http from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { parseDuration } from './config-values.js';
import { readiness, type Readiness } from './health.js';
import { AdminRouteError, findAdminRoute, runAdminRoute } from './hooks/admin-routes.js';
import { listenHttp } from './metrics.js';
import { isoTime, parseBanSubnet, type Ban } from './proxy/ban-list.js';
import { peerInfoJson } from './proxy/peer-info.js';
import type { ProxyServer } from './proxy/proxy-server.js';

export interface AdminActions {
  proxy: ProxyServer;
  /** reload config and hook chain; resolves to a description or rejects with the reason */
  reload?: () => Promise<string>;
  /** the hook chain as loaded, for GET /hooks */
  hooks?: () => unknown;
  /** where server-side failures (500) are logged */
  log?: Logger;
  /** workers: the peers of every worker (default: this process's sessions) */
  peers?: () => Promise<unknown[]>;
  /** workers: readiness over every worker (default: this process's proxy) */
  readiness?: () => Promise<Readiness>;
}

const MAX_BODY = 64 * 1024;
export const MAX_BAN_DURATION_MS = 10 * 365 * 24 * 3600_000;
const MAX_REASON = 256;
const BAN_FIELDS = new Set(['subnet', 'address', 'duration', 'reason']);

/** A request the client got wrong: answered with its status, never 500. */
class ClientError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** path → methods; a known path with another method is 405 with Allow */
const ROUTES: { match: (path: string) => boolean; methods: string[] }[] = [
  { match: (p) => p === '/health' || p === '/ready' || p === '/peers' || p === '/hooks', methods: ['GET'] },
  { match: (p) => p === '/bans', methods: ['GET', 'POST'] },
  { match: (p) => p.startsWith('/bans/'), methods: ['DELETE'] },
  { match: (p) => p === '/reload', methods: ['POST'] },
];

/**
 * Admin HTTP API on its own listener. Every route but /health and /ready needs
 * `Authorization: Bearer <token>`. Hooks of the running chain add routes under
 * `/hooks/<name>/<route>` (their module's `admin` table; see docs/hooks.md). Ban changes are answered once they are on disk: 201/200
 * after the fsync, 503 when the ban file could not be written (the change holds in memory).
 */
export function createAdminServer(token: string, actions: AdminActions): http.Server {
  if (!token.trim()) throw new Error('admin.token is empty or only whitespace');
  const expected = digest(token);
  return http.createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (err instanceof ClientError) return send(res, err.status, { error: err.message }, err.headers);
      actions.log?.error({ err: err.message, method: req.method, url: req.url }, 'admin request failed');
      send(res, 500, { error: 'internal error' });
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const route = `${req.method} ${path}`;
    const { proxy } = actions;
    if (route === 'GET /health') return send(res, 200, { status: 'ok' });
    if (route === 'GET /ready') {
      const r = actions.readiness ? await actions.readiness() : readiness(proxy);
      return send(res, r.ready ? 200 : 503, r);
    }
    const m = /^bearer[ \t]+(.*)$/i.exec(req.headers.authorization ?? '');
    const given = m ? m[1]!.trim() : '';
    if (!timingSafeEqual(digest(given), expected)) {
      return send(res, 401, { error: 'missing or wrong bearer token' }, { 'www-authenticate': 'Bearer' });
    }
    const known = ROUTES.find((r) => r.match(path));
    if (known && !known.methods.includes(req.method ?? '')) {
      throw new ClientError(405, `${path} accepts ${known.methods.join(', ')}`, { allow: known.methods.join(', ') });
    }
    if (route === 'GET /peers') return send(res, 200, { peers: actions.peers ? await actions.peers() : proxy.sessions().map((s) => peerInfoJson(s.info)) });
    if (route === 'GET /bans') return send(res, 200, { bans: proxy.bans.list().map(banJson) });
    if (route === 'POST /bans') {
      const { subnet, duration, reason } = banRequest(await readJson(req), proxy.settings.banDuration);
      const ban = proxy.ban(subnet, duration, reason);
      if (!ban) throw new ClientError(400, `not an address or subnet: ${subnet}`);
      try {
        await proxy.bans.flush();
      } catch (err) {
        return send(res, 503, { error: `the ban holds in memory but could not be saved to the ban file: ${(err as Error).message}`, ban: banJson(ban) });
      }
      return send(res, 201, { ban: banJson(ban) });
    }
    if (req.method === 'DELETE' && path.startsWith('/bans/')) {
      const subnet = decodePath(path.slice('/bans/'.length));
      if (!parseBanSubnet(subnet)) throw new ClientError(400, `not an address or subnet: ${subnet}`);
      if (!proxy.unban(subnet)) return send(res, 404, { error: `no ban for ${subnet}` });
      try {
        await proxy.bans.flush();
      } catch (err) {
        return send(res, 503, { error: `the ban is lifted in memory but the ban file could not be saved (it would return after a restart): ${(err as Error).message}` });
      }
      return send(res, 200, { removed: subnet });
    }
    if (route === 'POST /reload' && actions.reload) {
      try {
        return send(res, 200, { reloaded: await actions.reload() });
      } catch (err) {
        return send(res, 422, { error: (err as Error).message });
      }
    }
    if (route === 'GET /hooks' && actions.hooks) return send(res, 200, { hooks: actions.hooks() });
    if (path.startsWith('/hooks/')) return hookRoute(req, res, url);
    return send(res, 404, { error: `no route ${route}` });
  }

  /** `/hooks/<name>/<route>`: a route a module of the running chain declared in its `admin` table. */
  async function hookRoute(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const m = /^\/hooks\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (!m) throw new ClientError(404, `no route ${req.method} ${url.pathname}; hook routes are /hooks/<name>/<route>`);
    try {
      const found = findAdminRoute(actions.proxy.chain.hooks, decodePath(m[1]!), req.method ?? '', decodePath(m[2]!));
      const input = req.method === 'GET' ? Object.fromEntries(url.searchParams) : await readJson(req);
      return send(res, 200, await runAdminRoute(found, input));
    } catch (err) {
      if (err instanceof AdminRouteError) throw new ClientError(err.status, err.message, err.allow ? { allow: err.allow } : {});
      throw err;
    }
  }
}

export function serveAdmin(token: string, actions: AdminActions, host: string, port: number): Promise<http.Server> {
  return listenHttp(createAdminServer(token, actions), host, port);
}

/** A ban as the API prints it (and as the ban file reader accepts it back). */
function banJson(b: Ban): Record<string, unknown> {
  const json: Record<string, unknown> = { subnet: b.subnet, until: isoTime(b.until) ?? b.until, reason: b.reason, created: isoTime(b.created) ?? b.created };
  if (b.automatic) json.automatic = true; // bounded by bans.maxAutomatic, the first to go at the bound
  return json;
}

/** The fields of POST /bans, each checked; the first problem is a 400 naming the field. */
function banRequest(body: Record<string, unknown>, defaultDuration: number): { subnet: string; duration: number; reason: string } {
  const unknown = Object.keys(body).filter((k) => !BAN_FIELDS.has(k));
  if (unknown.length) throw new ClientError(400, `unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; expected subnet, duration, reason`);
  if (body.subnet !== undefined && body.address !== undefined) throw new ClientError(400, 'give "subnet" or "address", not both');
  const subnet = body.subnet ?? body.address;
  if (typeof subnet !== 'string' || subnet.length === 0 || subnet.length > 100) throw new ClientError(400, '"subnet" is required: an address or CIDR string');
  if (!parseBanSubnet(subnet)) throw new ClientError(400, `not an address or subnet: ${JSON.stringify(subnet)}`);
  const duration = body.duration === undefined ? defaultDuration : parseDuration(body.duration);
  if (duration === null || !Number.isFinite(duration) || duration <= 0 || duration > MAX_BAN_DURATION_MS) {
    throw new ClientError(400, '"duration" must be positive and at most 10 years: like 24h, 30m, 7d or a number of seconds');
  }
  if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > MAX_REASON)) {
    throw new ClientError(400, `"reason" must be a string of at most ${MAX_REASON} characters`);
  }
  return { subnet, duration, reason: typeof body.reason === 'string' ? body.reason : 'admin' };
}

function decodePath(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ClientError(400, `bad percent-escape in the path: ${s.slice(0, 100)}`);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
}

/** The body as a JSON object; 413 past MAX_BODY (the rest is discarded, up to a bound). */
function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => {
      // Discard the rest instead of closing at once: closing with unread bytes makes the
      // kernel send a reset, and the client may lose the 413. One that keeps sending far
      // past the limit is cut off.
      req.removeAllListeners('data');
      let discarded = 0;
      req.on('data', (c: Buffer) => {
        discarded += c.length;
        if (discarded > 16 * MAX_BODY) req.socket.destroy();
      });
      reject(new ClientError(413, `request body larger than ${MAX_BODY} bytes`));
    };
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) return tooLarge();
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) return tooLarge();
      chunks.push(c);
    });
    req.once('error', reject);
    req.once('end', () => {
      if (size === 0) return resolve({});
      let v: unknown;
      try {
        v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        return reject(new ClientError(400, `body is not valid JSON: ${(err as Error).message}`));
      }
      if (!v || typeof v !== 'object' || Array.isArray(v)) return reject(new ClientError(400, 'body must be a JSON object'));
      resolve(v as Record<string, unknown>);
    });
  });
}
