import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { LineCounter, parseDocument, isMap, isNode, isScalar, type Document } from 'yaml';
import { z } from 'zod';
import { MAX_PROTOCOL_MESSAGE_LENGTH, resolveNetwork, type Network } from './codec/index.js';
import { parseDuration, parseHostPort, parseSize, type HostPort } from './config-values.js';

/** The validated, typed configuration the proxy runs with. Durations are in ms, sizes in bytes. */
export interface Config {
  /** directory of the config file; relative paths (ban file, hook modules) resolve against it */
  baseDir: string;
  network: Network;
  listen: HostPort[];
  backend: HostPort;
  checksum: 'always' | 'lazy';
  /** what to do with a peer that opens with BIP324 v2 bytes */
  v2: 'reject' | 'passthrough';
  limits: {
    maxPeers: number;
    maxPeersPerAddress: number;
    maxPeersPerSubnet: number;
    handshakeTimeout: number;
    idleTimeout: number;
    maxMessageSize: number;
    /** bytes queued toward the peer before we stop reading from bitcoind (like -maxsendbuffer) */
    sendBuffer: number;
    /** bytes queued toward bitcoind before we stop reading from the peer (like -maxreceivebuffer) */
    receiveBuffer: number;
    backendConnectTimeout: number;
    /** time budget of one hook call */
    hookTimeout: number;
    /** bytes of frames that may wait behind an async hook, per direction */
    hookQueue: number;
    /** token buckets on new connections per address and per /24 (/64); refused as rate_limited before bitcoind is contacted */
    connectionRate: { perAddress: { burst: number; perMinute: number }; perSubnet: { burst: number; perMinute: number } };
  };
  /** an x: command no module registered: drop it silently, or answer `x:unknown` */
  xUnknown: 'drop' | 'reply';
  bans: {
    file: string | null;
    threshold: number;
    duration: number;
    /** repeated backend-initiated disconnects of one address within `window` ban it; count 0 disables */
    backendDisconnects: { count: number; window: number; duration: number };
  };
  metrics: { listen: HostPort } | null;
  admin: { listen: HostPort; token: string } | null;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  hooks: HookEntry[];
}

export interface HookEntry {
  /** as written: a path relative to the config file, or a package name */
  module: string;
  options: Record<string, unknown>;
  enabled: boolean;
}

const duration = (def: string) =>
  z.union([z.number(), z.string()]).default(def).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `expected a duration like 60s, 10m, 24h or a number of seconds, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return ms;
  });

const size = (def: number | string, max = Number.MAX_SAFE_INTEGER) =>
  z.union([z.number(), z.string()]).default(def).transform((v, ctx) => {
    const n = parseSize(v);
    if (n === null || n > max) {
      ctx.addIssue({ code: 'custom', message: `expected a size like 5MB, 512KiB or a number of bytes${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });

const hostPort = z.string().transform((v, ctx) => {
  const hp = parseHostPort(v);
  if (!hp) {
    ctx.addIssue({ code: 'custom', message: `expected host:port or [ipv6]:port, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return hp;
});

const count = (def: number) => z.number().int().min(0).default(def);

const sats = z.number().int().min(0).max(2_100_000_000_000_000);
const file = z.string().min(1);
const httpPayer = { url: z.string().regex(/^https?:\/\/\S+$/, 'an http:// or https:// URL'), tlsCertFile: file.optional(), timeout: duration('60s') };

/**
 * outbound: our own node's connections through the proxy (bitcoind -proxy=socks.listen), and
 * what the proxy may buy for them from sellers that announce the x: feature (issue 11).
 */
export const outboundSchema = z.strictObject({
  socks: z
    .strictObject({
      /** loopback by default: anyone who can reach it can make the proxy connect (and buy) for them */
      listen: z.union([hostPort, z.array(hostPort).min(1)]).prefault('127.0.0.1:9335'),
      maxConnections: z.number().int().min(1).default(32),
      negotiateTimeout: duration('10s'),
      connectTimeout: duration('10s'),
    })
    .prefault({}),
  /** an upstream SOCKS5 proxy (e.g. Tor's 127.0.0.1:9050): every connection is chained through it, and onion/I2P addresses need it */
  upstream: hostPort.optional(),
  /** the wallet file of credentials and purchases (mode 0600) */
  wallet: file.default('./data/wallet.json'),
  payer: z
    .discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('lnd'), ...httpPayer, macaroonFile: file, api: z.enum(['router', 'sync']).default('router') }),
      z.strictObject({ kind: z.literal('cln'), ...httpPayer, runeFile: file }),
      z.strictObject({ kind: z.literal('lnbits'), ...httpPayer, adminKeyFile: file }),
      z.strictObject({ kind: z.literal('phoenixd'), ...httpPayer, passwordFile: file }),
      z.strictObject({ kind: z.literal('dev'), url: z.string().regex(/^https?:\/\/\S+$/), token: z.string().min(16), timeout: duration('10s') }),
    ])
    .optional(),
  /** most routing fees per payment, sats */
  maxFeeSats: sats.default(10),
  budget: z
    .strictObject({
      /** tiers that may be bought, most preferred first */
      tiers: z.array(z.string().min(1)).min(1),
      /** the most one purchase of a tier may cost, sats; a tier not listed is never bought */
      maxPricePerTier: z.record(z.string(), sats),
      maxSatsPerDay: sats,
      maxSatsTotal: sats,
      /** any, or the sellers as our node dials them (host:port) */
      sellers: z.union([z.literal('any'), z.array(z.string().min(1))]).default('any'),
    })
    .optional(),
});
export type OutboundConfig = z.output<typeof outboundSchema>;

const schema = z.strictObject({
  network: z.string().default('mainnet'),
  port: z.number().int().min(1).max(65535).optional(),
  listen: z.union([hostPort, z.array(hostPort).min(1)]).optional(),
  backend: hostPort,
  checksum: z.enum(['always', 'lazy']).default('lazy'),
  v2: z.enum(['reject', 'passthrough']).default('reject'),
  xUnknown: z.enum(['drop', 'reply']).default('reply'),
  limits: z
    .strictObject({
      maxPeers: count(100),
      maxPeersPerAddress: count(4),
      maxPeersPerSubnet: count(16),
      handshakeTimeout: duration('60s'),
      idleTimeout: duration('20m'),
      maxMessageSize: size(MAX_PROTOCOL_MESSAGE_LENGTH, MAX_PROTOCOL_MESSAGE_LENGTH),
      sendBuffer: size('1MB'),
      receiveBuffer: size('5MB'),
      backendConnectTimeout: duration('5s'),
      hookTimeout: duration('5s'),
      hookQueue: size('1MB'),
      connectionRate: z
        .strictObject({
          perAddress: z.strictObject({ burst: count(30), perMinute: z.number().min(0).default(120) }).prefault({}),
          perSubnet: z.strictObject({ burst: count(200), perMinute: z.number().min(0).default(1200) }).prefault({}),
        })
        .prefault({}),
    })
    .prefault({}),
  bans: z
    .strictObject({
      file: z.string().nullable().default(null),
      threshold: z.number().int().min(1).default(100),
      duration: duration('24h'),
      backendDisconnects: z
        .strictObject({ count: count(5), window: duration('10m'), duration: duration('1h') })
        .prefault({}),
    })
    .prefault({}),
  metrics: z.union([z.literal(false), z.strictObject({ listen: hostPort.prefault('127.0.0.1:9333') })]).prefault({}),
  admin: z
    .union([z.literal(false), z.strictObject({ listen: hostPort.prefault('127.0.0.1:9334'), token: z.string().min(16, 'the admin token must be at least 16 characters') })])
    .default(false),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).prefault({}),
  outbound: outboundSchema.optional(),
  hooks: z
    .array(
      z.strictObject({
        module: z.string().min(1),
        options: z.record(z.string(), z.unknown()).default({}),
        enabled: z.boolean().default(true),
      }),
    )
    .default([]),
});

/** A config problem, with every issue naming its key and line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly issues: string[],
  ) {
    super(`invalid config ${file}:\n  ${issues.join('\n  ')}`);
  }
}

/** Read, substitute ${ENV} references, validate. Throws ConfigError. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read: ${(err as Error).message}`]);
  }
  return parseConfig(text, file, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => `line ${e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line}: YAML syntax: ${e.message.split('\n')[0]}`),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  const envIssues: string[] = [];
  const substituted = substituteEnv(raw, env, [], (key, name) =>
    envIssues.push(`${where(doc, lineCounter, key)}: environment variable ${name} is not set`),
  );
  if (envIssues.length > 0) throw new ConfigError(file, envIssues);

  const result = schema.safeParse(substituted);
  if (!result.success) {
    throw new ConfigError(
      file,
      result.error.issues.flatMap((i) =>
        // an unknown key is reported at its own line, not at the line of the mapping around it
        i.code === 'unrecognized_keys'
          ? i.keys.map((k) => `${where(doc, lineCounter, [...(i.path as (string | number)[]), k])}: unknown key`)
          : [`${where(doc, lineCounter, i.path as (string | number)[])}: ${i.message}`],
      ),
    );
  }
  const c = result.data;
  const issues: string[] = [];
  let network: Network;
  try {
    network = resolveNetwork(c.network, c.port ?? 0);
    if (network.defaultPort === 0) issues.push(`${where(doc, lineCounter, ['port'])}: a custom network magic needs "port"`);
  } catch (err) {
    issues.push(`${where(doc, lineCounter, ['network'])}: ${(err as Error).message}`);
    network = resolveNetwork('mainnet');
  }
  const listen = c.listen === undefined ? [{ host: '0.0.0.0', port: network.defaultPort }] : Array.isArray(c.listen) ? c.listen : [c.listen];
  if (issues.length > 0) throw new ConfigError(file, issues);

  const baseDir = path.dirname(path.resolve(file));
  return {
    baseDir,
    network,
    listen,
    backend: c.backend,
    checksum: c.checksum,
    v2: c.v2,
    xUnknown: c.xUnknown,
    limits: c.limits,
    bans: { ...c.bans, file: c.bans.file === null ? null : path.resolve(baseDir, c.bans.file) },
    metrics: c.metrics === false ? null : c.metrics,
    admin: c.admin === false ? null : c.admin,
    log: c.log,
    hooks: c.hooks,
  };
}

/** "key.path (line N)" for a path into the document; walks up to the nearest node that exists. */
function where(doc: Document, lc: LineCounter, keyPath: (string | number)[]): string {
  const name = keyPath.length ? keyPath.join('.') : '(top level)';
  for (let n = keyPath.length; n >= 0; n--) {
    // the line of the key itself (a block value such as a nested map starts on the next line)
    const parent = n === 0 ? null : n === 1 ? doc.contents : doc.getIn(keyPath.slice(0, n - 1), true);
    const key = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === keyPath[n - 1])?.key : null;
    const node = isNode(key) ? key : n === 0 ? doc.contents : doc.getIn(keyPath.slice(0, n), true);
    if (isNode(node) && node.range) return `${name} (line ${lc.linePos(node.range[0]).line})`;
  }
  return name;
}

function substituteEnv(v: unknown, env: NodeJS.ProcessEnv, keyPath: (string | number)[], missing: (keyPath: (string | number)[], name: string) => void): unknown {
  if (typeof v === 'string') {
    return v.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const val = env[name];
      if (val === undefined) {
        missing(keyPath, name);
        return '';
      }
      return val;
    });
  }
  if (Array.isArray(v)) return v.map((x, i) => substituteEnv(x, env, [...keyPath, i], missing));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substituteEnv(x, env, [...keyPath, k], missing)]));
  }
  return v;
}

/** The zod schema of the YAML config (scripts/gen-config-schema.ts turns it into schema/config.schema.json). */
export { schema as configSchema };
