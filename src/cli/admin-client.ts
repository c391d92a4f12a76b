/**
 * The admin API as the CLI's admin commands reach it: where it is (--admin, the config's
 * admin.listen, BHP_ADMIN_URL or 127.0.0.1:9334), the token (--token, BHP_ADMIN_TOKEN or the
 * config's admin.token), and one request with errors that say what to do.
 */
import * as http from 'node:http';
import { loadConfig } from '../config.js';
import { formatHostPort, parseHostPort } from '../config-values.js';
import { CliError, UsageError, type OptionSpec, type ParsedArgs } from './spec.js';

export const DEFAULT_ADMIN = 'http://127.0.0.1:9334';
const TIMEOUT_MS = 15_000;
/** answers larger than this are not the admin API's */
const MAX_ANSWER = 16 * 1024 * 1024;

export const ADMIN_OPTIONS: Record<string, OptionSpec> = {
  admin: { type: 'string', arg: 'URL', help: `the admin API, as http://host:port or host:port (default: --config's admin.listen, else $BHP_ADMIN_URL, else ${DEFAULT_ADMIN})` },
  token: { type: 'string', arg: 'TOKEN', help: "the admin token (default: $BHP_ADMIN_TOKEN, else --config's admin.token); prefer the variable: a command line is visible to other users" },
  config: { type: 'string', short: 'c', arg: 'FILE', file: true, help: "read admin.listen and admin.token from the proxy's config" },
  json: { type: 'boolean', help: "print the API's JSON answer instead of a table" },
};

export interface AdminTarget {
  url: URL;
  token: string;
}

/** Where the admin API is and which token to send; throws UsageError when there is no token. */
export function adminTarget(values: ParsedArgs['values'], command: string, env: NodeJS.ProcessEnv = process.env): AdminTarget {
  const config = typeof values.config === 'string' ? loadConfig(values.config, env) : null;
  if (config && !config.admin) throw new CliError(`${values.config} has no admin API (admin: false): enable admin: { listen, token } there and restart the proxy`);
  const fromConfig = config?.admin ? `http://${formatHostPort(reachable(config.admin.listen))}` : undefined;
  const url = adminUrl(stringOf(values.admin) ?? fromConfig ?? (env.BHP_ADMIN_URL || undefined) ?? DEFAULT_ADMIN, command);
  const token = stringOf(values.token) ?? (env.BHP_ADMIN_TOKEN || undefined) ?? config?.admin?.token;
  if (!token) throw new UsageError('no admin token: export BHP_ADMIN_TOKEN (the value of admin.token in the proxy config), or give --config FILE or --token', command);
  return { url, token };
}

const stringOf = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** A wildcard listener is reached on loopback of its family. */
function reachable(hp: { host: string; port: number }): { host: string; port: number } {
  if (hp.host === '0.0.0.0') return { ...hp, host: '127.0.0.1' };
  if (hp.host === '::') return { ...hp, host: '::1' };
  return hp;
}

function adminUrl(text: string, command: string): URL {
  const hp = parseHostPort(text);
  const candidate = hp ? `http://${formatHostPort(hp)}` : text;
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    throw new UsageError(`--admin ${JSON.stringify(text)} is not a URL or host:port (like http://127.0.0.1:9334)`, command);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--admin must be an http:// or https:// URL, not ${url.protocol}`, command);
  return url;
}

export interface AdminAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** One request; connection problems, 401 and answers that are not the admin API's become CliErrors that say what to do. */
export async function adminRequest(target: AdminTarget, method: string, path: string, body?: unknown): Promise<AdminAnswer> {
  const url = new URL(path.replace(/^\//, ''), target.url.href.endsWith('/') ? target.url : new URL(`${target.url.href}/`));
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const where = target.url.origin + target.url.pathname.replace(/\/$/, '');
  // node:https only when asked for: the executable's `run` loads this module too
  const client = url.protocol === 'https:' ? await import('node:https') : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      {
        method,
        timeout: TIMEOUT_MS,
        headers: { authorization: `Bearer ${target.token}`, accept: 'application/json', ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER) return req.destroy(new CliError(`${where} answered more than ${MAX_ANSWER} bytes: not the admin API?`));
          chunks.push(c);
        });
        res.on('error', (err) => reject(connectionError(err, where)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status === 401) return reject(new CliError(`${where} refused the token (401): use the admin.token of the proxy's config (export BHP_ADMIN_TOKEN=..., or --config FILE)`));
          let json: unknown;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            json = undefined;
          }
          if (!json || typeof json !== 'object' || Array.isArray(json)) {
            return reject(new CliError(`${where} answered HTTP ${status} without the admin API's JSON: is that the admin listener (admin.listen), not the metrics one?`));
          }
          resolve({ status, body: json as Record<string, unknown> });
        });
      },
    );
    req.on('timeout', () => req.destroy(new CliError(`${where} did not answer within ${TIMEOUT_MS / 1000} s: is the proxy stuck, or is something else listening there?`)));
    req.on('error', (err) => reject(err instanceof CliError ? err : connectionError(err, where)));
    req.end(payload);
  });
}

const CONNECT_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
};

function connectionError(err: NodeJS.ErrnoException, where: string): CliError {
  const why = CONNECT_ERRORS[err.code ?? ''] ?? err.message;
  return new CliError(`cannot reach the admin API at ${where} (${why}): is the proxy running with admin: enabled in its config? Point at it with --admin URL or --config FILE`);
}

/** The API's own error text for a refusal (400, 404, 422, 503), or the status. */
export function apiError(a: AdminAnswer): string {
  return typeof a.body.error === 'string' ? a.body.error : `HTTP ${a.status}`;
}
