import { closeSync, openSync, readSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { DEFAULT_MAX_AUTOMATIC_BANS, parseBanSubnet } from './proxy/ban-list.js';
import { LineCounter, parseDocument, isMap, isNode, isPair, isScalar, isSeq, visit, type Document, type Scalar } from 'yaml';
import { z } from 'zod';
import { MAX_PROTOCOL_MESSAGE_LENGTH, resolveNetwork, type Network } from './codec/index.js';
import { formatHostPort, isLoopbackHost, parseDuration, parseHostPort, parseSize, type HostPort } from './config-values.js';
import type { HookSpec } from './hooks/loader.js';
import { knownKeysAt, unknownKeyMessage } from './hooks/suggest.js';
import { DURATION_HINT, SIZE_HINT } from './hooks/units.js';

/** Larger files are refused before parsing: YAML parsing costs far more memory and time than the text. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Alias references a document may expand (the yaml package's default): an alias bomb stops here. */
const MAX_ALIAS_COUNT = 100;
/** The longest delay a Node timer can take; longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Issues printed at most; a broken file can otherwise produce thousands. */
const MAX_ISSUES = 20;

/** The validated, typed configuration the proxy runs with. Durations are in ms, sizes in bytes. */
export interface Config {
  /** directory of the config file; relative paths (ban file, hook modules) resolve against it */
  baseDir: string;
  network: Network;
  listen: HostPort[];
  backend: HostPort;
  checksum: 'always' | 'lazy';
  /** what to do with a peer that opens with BIP324 v2 bytes */
  v2: 'reject' | 'passthrough' | 'terminate';
  limits: {
    maxPeers: number;
    /** slots beyond maxPeers; a peer admitted into one must be marked paid (hook setPriority) within reservedAuthTimeout */
    reservedPeers: number;
    reservedAuthTimeout: number;
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
    /** time budget of importing a hook module, and of its init() */
    hookLoadTimeout: number;
    /** bytes of frames that may wait behind an async hook, per direction */
    hookQueue: number;
    /** token buckets on new connections per address and per /24 (/64); refused as rate_limited before bitcoind is contacted */
    connectionRate: { perAddress: { burst: number; perMinute: number }; perSubnet: { burst: number; perMinute: number } };
    /** per-peer hook time (ms of synchronous hook work) allowed per window; null: no budget */
    hookBudget: HookBudgetSetting | null;
    /** a peer over its hook budget: throttle (stop reading it until it is back in budget) or disconnect */
    hookBudgetAction: 'throttle' | 'disconnect';
    /** log lines per peer and reason per minute; then one "suppressed K similar lines" line */
    logLinesPerMinute: number;
  };
  /** an x: command no module registered: drop it silently, or answer `x:unknown` */
  xUnknown: 'drop' | 'reply';
  bans: {
    file: string | null;
    threshold: number;
    duration: number;
    /** the proxy's own bans held at most; at the bound a new one replaces the one that ends soonest */
    maxAutomatic: number;
    /** repeated backend-initiated disconnects of one address within `window` ban it; count 0 disables */
    backendDisconnects: { count: number; window: number; duration: number };
  };
  metrics: { listen: HostPort } | null;
  admin: { listen: HostPort; token: string } | null;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  hooks: HookEntry[];
  /** our own node's outbound connections through the SOCKS5 front, with a buying policy (docs/buyer.md); null: off */
  outbound: OutboundConfig | null;
  /** shared state: null keeps it in this process (memory and the ban file) */
  store: StoreSetting | null;
  /** PROXY protocol (v1/v2) accepted from these load balancers only; null: not accepted */
  proxyProtocol: { trusted: string[] } | null;
  /** processes sharing the listeners (node:cluster); 1 runs in this process */
  workers: number;
}

export interface StoreSetting {
  /** redis://[user:pass@]host:port[/db] or rediss:// */
  redis: string;
  /** key prefix, so several fleets can share one Redis */
  prefix: string;
  /** how often the whole ban set is compared with Redis (pub/sub carries changes at once) */
  syncInterval: number;
}

export interface HookBudgetSetting {
  budgetMs: number;
  windowMs: number;
}

export interface HookEntry {
  /** as written: a path relative to the config file, or a package name */
  module: string;
  options: Record<string, unknown>;
  enabled: boolean;
  /** where an option was written ("hooks.1.options.deny (line 9)"), for the loader's messages */
  locate?: HookSpec['locate'];
}

/** A duration or size setting: parsed by the one parser (src/hooks/units.ts), bounded above. */
const measure = (parse: (v: unknown) => number | null, hint: string) => (def: number | string, max?: { value: number; text: string }) =>
  z.union([z.number(), z.string()]).default(def).transform((v, ctx) => {
    const n = parse(v);
    if (n === null || (max && n > max.value)) {
      ctx.addIssue({ code: 'custom', message: `expected ${hint}${max ? ` up to ${max.text}` : ''}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });
const duration = measure(parseDuration, DURATION_HINT);
const size = measure(parseSize, SIZE_HINT);
/** a duration that becomes a timer */
const timeout = (def: string) => duration(def, { value: MAX_TIMER_MS, text: '24d (the longest Node timer)' });
/** how long a ban lasts: the ban list makes no ban of 0 ms, so a peer at the threshold would be neither banned nor disconnected */
const banDuration = (def: string) => duration(def).refine((ms) => ms > 0, 'expected more than 0: a ban of 0 is never made');

const ADMIN_TOKEN_HINT = 'set it or ${BHP_ADMIN_TOKEN}';
const adminToken = z
  .string({ error: (i) => (i.input === undefined ? `required: ${ADMIN_TOKEN_HINT}` : 'expected a string of at least 16 characters') })
  .superRefine((t, ctx) => {
    const issue = (message: string) => ctx.addIssue({ code: 'custom', message });
    // an empty ${VAR} substitutes to "": as good as missing
    if (t.trim() === '') issue(`${t === '' ? 'empty' : 'only whitespace'}: ${ADMIN_TOKEN_HINT}`);
    else if (/\s/.test(t)) issue('contains whitespace, which a Bearer token cannot carry');
    // HTTP header values are bytes: Node refuses to send others, and reads the rest as latin1
    else if (!/^[\x21-\x7e]+$/.test(t)) issue('contains characters other than printable ASCII, which no HTTP client can send as they are');
    else if (t.length < 16) issue('the admin token must be at least 16 characters');
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
const httpPayer = { url: z.string().regex(/^https?:\/\/\S+$/, 'an http:// or https:// URL'), tlsCertFile: file.optional(), timeout: timeout('60s') };

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
      negotiateTimeout: timeout('10s'),
      connectTimeout: timeout('10s'),
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
      z.strictObject({ kind: z.literal('dev'), url: z.string().regex(/^https?:\/\/\S+$/), token: z.string().min(16), hook: z.string().min(1).default('paywall'), timeout: timeout('10s') }),
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

/** "50ms per 250ms": hook time a peer may use per window (also its largest burst); false or "off" disables the budget. */
const hookBudget = z
  .unknown()
  .default('50ms per 250ms')
  .transform((v, ctx): HookBudgetSetting | null => {
    if (v === false || v === 'off') return null;
    const m = typeof v === 'string' ? /^\s*(\S+)\s+per\s+(\S+)\s*$/.exec(v) : null;
    const budgetMs = m ? parseDuration(m[1]) : null;
    const windowMs = m ? parseDuration(m[2]) : null;
    if (budgetMs === null || windowMs === null || budgetMs <= 0 || windowMs < budgetMs || windowMs > 3_600_000) {
      ctx.addIssue({ code: 'custom', message: `expected "<time> per <window>" like "200ms per 1s" (time > 0, window from time to 1h), or false, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return { budgetMs, windowMs };
  });

const schema = z.strictObject({
  network: z.string().default('mainnet'),
  port: z.number().int().min(1).max(65535).optional(),
  listen: z.union([hostPort, z.array(hostPort).min(1)]).optional(),
  backend: hostPort,
  checksum: z.enum(['always', 'lazy']).default('lazy'),
  v2: z.enum(['reject', 'passthrough', 'terminate']).default('terminate'),
  xUnknown: z.enum(['drop', 'reply']).default('reply'),
  limits: z
    .strictObject({
      maxPeers: count(100),
      reservedPeers: count(0),
      reservedAuthTimeout: timeout('30s'),
      // at least 1: 0 would refuse every peer (not "off", as 0 is for connectionRate bursts)
      maxPeersPerAddress: z.number().int().min(1).default(4),
      maxPeersPerSubnet: z.number().int().min(1).default(16),
      handshakeTimeout: timeout('60s'),
      idleTimeout: timeout('20m'),
      maxMessageSize: size(MAX_PROTOCOL_MESSAGE_LENGTH, { value: MAX_PROTOCOL_MESSAGE_LENGTH, text: String(MAX_PROTOCOL_MESSAGE_LENGTH) }),
      sendBuffer: size('1MB'),
      receiveBuffer: size('5MB'),
      backendConnectTimeout: timeout('5s'),
      hookTimeout: timeout('5s'),
      hookLoadTimeout: timeout('30s'),
      hookQueue: size('1MB'),
      connectionRate: z
        .strictObject({
          perAddress: z.strictObject({ burst: count(30), perMinute: z.number().min(0).default(120) }).prefault({}),
          perSubnet: z.strictObject({ burst: count(200), perMinute: z.number().min(0).default(1200) }).prefault({}),
        })
        .prefault({}),
      hookBudget,
      hookBudgetAction: z.enum(['throttle', 'disconnect']).default('throttle'),
      logLinesPerMinute: z.number().int().min(1).max(100_000).default(10),
    })
    .prefault({}),
  bans: z
    .strictObject({
      file: z.string().nullable().default(null),
      threshold: z.number().int().min(1).default(100),
      duration: banDuration('24h'),
      // the proxy's own bans (misbehaviour, hooks, backend disconnects) held at most; see ban-list.ts
      maxAutomatic: z.number().int().min(1).max(10_000_000).default(DEFAULT_MAX_AUTOMATIC_BANS),
      backendDisconnects: z
        .strictObject({ count: count(5), window: duration('10m'), duration: banDuration('1h') })
        .prefault({}),
    })
    .prefault({}),
  metrics: z.union([z.literal(false), z.strictObject({ listen: hostPort.prefault('127.0.0.1:9333') })]).prefault({}),
  admin: z
    .union([z.literal(false), z.strictObject({ listen: hostPort.prefault('127.0.0.1:9334'), token: adminToken })])
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
  store: z
    .union([
      z.literal(false),
      z.strictObject({
        redis: z.string().regex(/^rediss?:\/\/\S+$/, 'expected a redis:// or rediss:// URL'),
        prefix: z.string().max(64).default('bhp:'),
        // a timer too: 0 would compare every ban with Redis back to back
        syncInterval: timeout('10s').refine((ms) => ms >= 1000, 'expected at least 1s'),
      }),
    ])
    .default(false),
  proxyProtocol: z
    // the strict parser bans use: "10.5" would otherwise be read as 10.0.0.5, a host trusted to claim any address
    .union([z.literal(false), z.strictObject({ trusted: z.array(z.string().refine((c) => parseBanSubnet(c) !== null, 'expected an address or CIDR')).min(1) })])
    .default(false),
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).default(1),
});

/** A config problem, with every issue naming its key and line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly issues: string[],
  ) {
    // one self-contained line per issue, like a compiler's
    super(issues.map((i) => `${file}: ${i}`).join('\n'));
  }

  /** The first MAX_ISSUES of `items`, rendered (finding a line is not free: a hostile file has 100,000 issues), then a count. */
  static of<T>(file: string, items: readonly T[], render: (item: T) => string): ConfigError {
    const shown = items.slice(0, MAX_ISSUES).map(render);
    if (items.length > MAX_ISSUES) shown.push(`... and ${items.length - MAX_ISSUES} more`);
    return new ConfigError(file, shown);
  }
}

/** Read (at most MAX_CONFIG_BYTES), substitute ${ENV} references, validate. Throws ConfigError. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let bytes: Buffer;
  try {
    bytes = readAtMost(file, MAX_CONFIG_BYTES + 1);
  } catch (err) {
    throw new ConfigError(file, [`cannot read: ${(err as Error).message}`]);
  }
  if (bytes.length > MAX_CONFIG_BYTES) throw tooLarge(file);
  return parseConfig(bytes.toString('utf8'), file, env);
}

/** Reads no more than `max` bytes, whatever the file is (a FIFO or /dev/zero has no size to check first). */
function readAtMost(file: string, max: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(max);
    let n = 0;
    for (let got = -1; got !== 0 && n < max; n += got) got = readSync(fd, buf, n, max - n, null);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

const tooLarge = (file: string) => new ConfigError(file, [`larger than ${MAX_CONFIG_BYTES} bytes (1 MiB): refused before parsing; a proxy config is a few KB`]);

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  if (text.length > MAX_CONFIG_BYTES || Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw tooLarge(file);
  const lineCounter = new LineCounter();
  // uniqueKeys is checked below in linear time: the yaml package's check is quadratic in the keys of a map
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const lineOf = (pos: number) => lineCounter.linePos(pos).line;
  // a deep nest repeats one error per level, and runs the parser out of stack in more than one
  // place (how many depends on the Node version): one line for all of those
  const tooDeep = (m: string) => /call stack|stack overflow/i.test(m);
  const syntax = [...new Map(doc.errors.map((e) => [tooDeep(e.message) ? 'too deep' : `${e.code} ${e.message}`, e])).values()];
  if (syntax.length > 0) {
    throw ConfigError.of(file, syntax, (e) => `line ${lineOf(e.pos[0])}: YAML syntax: ${tooDeep(e.message) ? 'nested too deep (the parser ran out of call stack)' : e.message.split('\n')[0]}`);
  }
  const duplicates = duplicateKeys(doc);
  if (duplicates.length > 0) {
    throw ConfigError.of(file, duplicates, ({ key, first, chain }) => `${[...keyPathOf(chain), key.value].join('.')} (line ${lineOf(key.range![0])}): duplicate key "${String(key.value)}" (first on line ${lineOf(first)})`);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (err) {
    // the yaml package throws a ReferenceError for an alias bomb
    throw new ConfigError(file, [`YAML aliases expand too far (${(err as Error).message}): refused; a config needs at most a few *aliases`]);
  }
  const unset: [(string | number)[], string][] = [];
  const substituted = substituteEnv(raw, env, [], (key, name) => unset.push([key, name]));
  if (unset.length > 0) throw ConfigError.of(file, unset, ([key, name]) => `${where(doc, lineCounter, key)}: environment variable ${name} is not set`);

  const result = schema.safeParse(substituted);
  if (!result.success) {
    const explained = result.error.issues.flatMap((i) => explain(i, substituted));
    // the nearest known key is looked up only for the issues printed (a hostile file has 100,000 unknown keys)
    const render = ({ path: p, message, unknownKey }: Explained) => `${where(doc, lineCounter, p)}: ${unknownKey !== undefined ? unknownKeyMessage(unknownKey, knownKeysAt(schema, p.slice(0, -1))) : message}`;
    throw ConfigError.of(file, explained, render);
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
  // every address the proxy binds, entries of one list included: a clash fails `run` as if another process held the port
  const listeners: Listener[] = [
    ...listenersAt(['listen'], c.listen === undefined ? listen[0]! : c.listen),
    // node:http listens dual-stack: its [::] takes the IPv4 port too
    ...(c.metrics ? listenersAt(['metrics', 'listen'], c.metrics.listen, true) : []),
    ...(c.admin ? listenersAt(['admin', 'listen'], c.admin.listen, true) : []),
    ...(c.outbound ? listenersAt(['outbound', 'socks', 'listen'], c.outbound.socks.listen) : []),
  ];
  for (const [i, listener] of listeners.entries()) {
    const [keyPath, hp] = listener;
    const clash = listeners.slice(0, i).find((other) => sameSocket(other, listener));
    if (clash) issues.push(`${where(doc, lineCounter, keyPath)}: ${formatHostPort(hp)} is also ${clash[0].join('.')} ${formatHostPort(clash[1])}`);
  }
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
    hooks: c.hooks.map((h, i): HookEntry => withLocate(h, (optionPath) => where(doc, lineCounter, ['hooks', i, 'options', ...optionPath]))),
    outbound: c.outbound ?? null,
    store: c.store === false ? null : c.store,
    proxyProtocol: c.proxyProtocol === false ? null : c.proxyProtocol,
    workers: c.workers === 'auto' ? availableParallelism() : c.workers,
  };
}

/** `locate` as a non-enumerable property: a Config stays plain data (structuredClone, JSON) and a clone just loses the lines. */
function withLocate(h: Omit<HookEntry, 'locate'>, locate: NonNullable<HookEntry['locate']>): HookEntry {
  return Object.defineProperty({ ...h }, 'locate', { value: locate, enumerable: false });
}

/** The warning to print loudly when the admin API can be reached from other machines, or null. */
export function adminExposure(c: Config): string | null {
  if (!c.admin || isLoopbackHost(c.admin.listen.host)) return null;
  return `admin.listen ${formatHostPort(c.admin.listen)} is not a loopback address: anyone who reaches it can try the token, and it speaks plain HTTP; prefer 127.0.0.1 (or a TLS proxy in front)`;
}

/** The warnings to print loudly for SOCKS listeners other machines can reach (the front asks for no credentials). */
export function socksExposure(c: Config): string[] {
  const listen = c.outbound?.socks.listen ?? [];
  return (Array.isArray(listen) ? listen : [listen])
    .filter((hp) => !isLoopbackHost(hp.host))
    .map((hp) => `outbound.socks.listen ${formatHostPort(hp)} is not a loopback address: the SOCKS5 front asks for no credentials, so anyone who reaches it can make the proxy connect, and buy within outbound.budget, for them; prefer 127.0.0.1`);
}

/**
 * "key.path (line N)" for a path into the document. A key that is not in the file has no line
 * of its own: it says so, and where to add it (the nearest mapping that is there).
 */
function where(doc: Document, lc: LineCounter, keyPath: readonly (string | number)[]): string {
  const name = keyPath.length ? keyPath.join('.') : '(top level)';
  for (let n = keyPath.length; n >= 0; n--) {
    // the line of the key itself (a block value such as a nested map starts on the next line)
    const parent = n === 0 ? null : n === 1 ? doc.contents : doc.getIn(keyPath.slice(0, n - 1), true);
    const key = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === keyPath[n - 1])?.key : null;
    const node = isNode(key) ? key : n === 0 ? doc.contents : doc.getIn(keyPath.slice(0, n), true);
    if (!isNode(node) || !node.range) continue;
    const line = lc.linePos(node.range[0]).line;
    if (n === keyPath.length) return `${name} (line ${line})`;
    if (n === 0) return `${name} (not set; add it at the top level)`;
    return `${name} (not set; add it under ${keyPath.slice(0, n).join('.')} on line ${line})`;
  }
  return `${name} (not set; add it at the top level)`;
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

/** One problem to print: a message, or an unknown key (its "did you mean" is found when printed). */
type Explained = { path: (string | number)[]; message: string; unknownKey?: string };

/** What a required key is for, when it is missing. */
const REQUIRED_HINTS: Record<string, string> = {
  backend: 'the host:port of bitcoind\'s P2P listener, on loopback, e.g. backend: "127.0.0.1:8433" (see deploy/bitcoin.conf)',
};

/** A zod issue in the operator's terms: unknown keys one by one, "missing", and the union branch the value was meant for. */
function explain(i: z.core.$ZodIssue, input: unknown, prefix: PropertyKey[] = []): Explained[] {
  const p = [...prefix, ...i.path] as (string | number)[];
  const missing = valueAt(input, p) === undefined;
  if (i.code === 'unrecognized_keys') return i.keys.map((k) => ({ path: [...p, k], message: 'unknown key', unknownKey: k }));
  const required = (): Explained[] => [{ path: p, message: `required${REQUIRED_HINTS[p.join('.')] ? `: ${REQUIRED_HINTS[p.join('.')]}` : ''}` }];
  if (i.code === 'invalid_union') {
    // the branch that failed below its root is the one the operator meant (false | { listen, token })
    const meant = i.errors.filter((errs) => errs.some((e) => e.path.length > 0 || (e.code !== 'invalid_type' && e.code !== 'invalid_value')));
    if (meant.length === 1) return meant[0]!.flatMap((e) => explain(e, input, p));
    if (missing) return required();
    return [{ path: p, message: [...new Set(i.errors.flatMap((errs) => errs.map((e) => e.message.replace(/^Invalid input: /, ''))))].join(', or ') }];
  }
  if (i.code === 'invalid_type' && missing && i.message.startsWith('Invalid input')) return required();
  return [{ path: p, message: i.message }];
}

function valueAt(v: unknown, keyPath: readonly (string | number)[]): unknown {
  for (const k of keyPath) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined;
  return v;
}

interface DuplicateKey {
  key: Scalar;
  /** where the key was first written */
  first: number;
  /** the mapping's ancestors and the mapping itself */
  chain: readonly unknown[];
}

/** Every key written twice in one mapping (linear in the keys; named and located only when reported). */
function duplicateKeys(doc: Document): DuplicateKey[] {
  const out: DuplicateKey[] = [];
  visit(doc, {
    Map(_, map, ancestors) {
      const seen = new Map<string, number>();
      for (const pair of map.items) {
        if (!isScalar(pair.key) || !pair.key.range) continue;
        const key = String(pair.key.value);
        const first = seen.get(key);
        if (first === undefined) seen.set(key, pair.key.range[0]);
        else out.push({ key: pair.key, first, chain: [...ancestors, map] });
      }
    },
  });
  return out;
}

/** The key path of a node, from its ancestors as yaml's visit() gives them. */
function keyPathOf(chain: readonly unknown[]): (string | number)[] {
  const out: (string | number)[] = [];
  chain.forEach((a, i) => {
    if (isPair(a) && isScalar(a.key)) out.push(String(a.key.value));
    else if (isSeq(a)) out.push(a.items.indexOf(chain[i + 1] as never));
  });
  return out;
}

/** A bound address: its key path, where, and whether an IPv6 wildcard there takes IPv4 too. */
type Listener = [(string | number)[], HostPort, boolean];

/** A listen setting's addresses with their key paths (`listen.1` when it is a list). */
function listenersAt(keyPath: string[], v: HostPort | HostPort[], dualStack = false): Listener[] {
  return Array.isArray(v) ? v.map((hp, i): Listener => [[...keyPath, i], hp, dualStack]) : [[keyPath, v, dualStack]];
}

/**
 * Two listeners that cannot both bind: same port, and the same host or a wildcard of its family
 * (of both families for a dual-stack `::`).
 */
function sameSocket([, a, aDual]: Listener, [, b, bDual]: Listener): boolean {
  // port 0: each listener gets its own port from the OS
  if (a.port !== b.port || a.port === 0) return false;
  const [x, y] = [a.host.toLowerCase(), b.host.toLowerCase()];
  const wildcard = (h: string) => h === '0.0.0.0' || h === '::';
  if ((aDual && x === '::') || (bDual && y === '::')) return true;
  return x === y || ((wildcard(x) || wildcard(y)) && x.includes(':') === y.includes(':'));
}

/** The zod schema of the YAML config (scripts/gen-config-schema.ts turns it into schema/config.schema.json). */
export { schema as configSchema };
