import * as http from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { parseDuration } from './config-values.js';
import { listenHttp } from './metrics.js';
import { peerInfoJson } from './proxy/peer-info.js';
import type { ProxyServer } from './proxy/proxy-server.js';

export interface AdminActions {
  proxy: ProxyServer;
  /** reload config and hook chain; resolves to a description or rejects with the reason */
  reload?: () => Promise<string>;
  /** the hook chain as loaded, for GET /hooks */
  hooks?: () => unknown;
}

const MAX_BODY = 64 * 1024;

/**
 * Admin HTTP API on its own listener. Every route but /health and /ready needs
 * `Authorization: Bearer <token>`.
 */
export function createAdminServer(token: string, actions: AdminActions): http.Server {
  const expected = digest(token);
  return http.createServer((req, res) => {
    handle(req, res).catch((err: Error) => send(res, 500, { error: err.message }));
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const route = `${req.method} ${url.pathname}`;
    const { proxy } = actions;
    if (route === 'GET /health') return send(res, 200, { status: 'ok' });
    if (route === 'GET /ready') {
      const ready = proxy.addresses().length > 0 && proxy.backendUp !== false;
      return send(res, ready ? 200 : 503, { ready, backendUp: proxy.backendUp, listening: proxy.addresses() });
    }
    const auth = req.headers.authorization ?? '';
    const given = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!timingSafeEqual(digest(given), expected)) {
      res.setHeader('www-authenticate', 'Bearer');
      return send(res, 401, { error: 'missing or wrong bearer token' });
    }
    if (route === 'GET /peers') return send(res, 200, { peers: proxy.sessions().map((s) => peerInfoJson(s.info)) });
    if (route === 'GET /bans') return send(res, 200, { bans: proxy.bans.list().map((b) => ({ ...b, until: new Date(b.until).toISOString(), created: new Date(b.created).toISOString() })) });
    if (route === 'POST /bans') {
      const body = await readJson(req);
      const subnet = typeof body.subnet === 'string' ? body.subnet : typeof body.address === 'string' ? body.address : null;
      const duration = parseDuration(body.duration ?? '24h');
      if (!subnet) return send(res, 400, { error: 'body needs "subnet" (an address or CIDR)' });
      if (duration === null) return send(res, 400, { error: '"duration" must be like 24h, 30m or a number of seconds' });
      const ban = proxy.ban(subnet, duration, typeof body.reason === 'string' ? body.reason : 'admin');
      return ban ? send(res, 201, { ban: { ...ban, until: new Date(ban.until).toISOString() } }) : send(res, 400, { error: `not an address or subnet: ${subnet}` });
    }
    if (req.method === 'DELETE' && url.pathname.startsWith('/bans/')) {
      const subnet = decodeURIComponent(url.pathname.slice('/bans/'.length));
      return proxy.unban(subnet) ? send(res, 200, { removed: subnet }) : send(res, 404, { error: `no ban for ${subnet}` });
    }
    if (route === 'POST /reload' && actions.reload) {
      try {
        return send(res, 200, { reloaded: await actions.reload() });
      } catch (err) {
        return send(res, 422, { error: (err as Error).message });
      }
    }
    if (route === 'GET /hooks' && actions.hooks) return send(res, 200, { hooks: actions.hooks() });
    return send(res, 404, { error: `no route ${route}` });
  }
}

export function serveAdmin(token: string, actions: AdminActions, host: string, port: number): Promise<http.Server> {
  return listenHttp(createAdminServer(token, actions), host, port);
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(c);
  }
  if (size === 0) return {};
  const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('body must be a JSON object');
  return v as Record<string, unknown>;
}
