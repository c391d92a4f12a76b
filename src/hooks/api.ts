/**
 * The public API that hook modules are written against (`bitcoin-hook-proxy/hooks`).
 * It is the seed proposal's MessageHookIn / MessageHookOut / MessageHook, made typed:
 *   MessageHookIn  → HookMessage + HookPeer
 *   MessageHookOut → HookResult
 *   MessageHook    → HookModule (the module's default export)
 * A module must not import anything from the proxy but this API and the codec.
 */

/** Major.minor. A module whose major differs from the proxy's refuses to load. */
export const HOOK_API_VERSION = '1.3';

/** `inbound`: peer → bitcoind. `outbound`: bitcoind → peer. */
export type Direction = 'inbound' | 'outbound';

/** BIP 434 feature id of the proxy's x: protocol (docs/x-protocol.md). */
export const X_FEATURE_ID = 'bitcoin-hook-proxy/x/1';

/** Minimum protocol version for BIP 434 `feature` messages. */
export const FEATURE_MIN_VERSION = 70017;

/** What a hook sees of a peer (the seed's nodeid, nodeaddr, nVersion, serviceflags, and more). */
export interface HookPeer {
  readonly id: number;
  /** the peer's real address (bitcoind only sees 127.0.0.1) */
  readonly address: string;
  readonly port: number;
  /** from the peer's version message; null before it arrived */
  readonly version: number | null;
  readonly services: bigint | null;
  readonly userAgent: string | null;
  readonly startHeight: number | null;
  readonly relay: boolean | null;
  readonly connectedAt: number;
  /** both veracks seen */
  readonly handshakeComplete: boolean;
  readonly misbehaviour: number;
  /** BIP 434 features the peer announced: feature id → feature data */
  readonly features: ReadonlyMap<string, Buffer>;
  /**
   * A hook marked this peer as holding a paid (priority) tier with ctx.setPriority (since API
   * 1.3): it is never evicted, and it may keep a reserved slot.
   */
  readonly priority: boolean;
  /**
   * Per-peer state shared by all hooks of the chain: one hook writes (e.g. a paid tier), others
   * read. Use keys namespaced by your module name, e.g. `paywall.tier`.
   */
  readonly state: Map<string, unknown>;
}

/** One P2P message as a hook sees it (the seed's strCommand, vRecv, vRecvLen, nTimeReceived). */
export interface HookMessage {
  readonly command: string;
  /** the payload bytes, raw; do not modify (copy first) */
  readonly payload: Buffer;
  /** payload size in bytes */
  readonly size: number;
  /** ms since the epoch when the proxy received it */
  readonly receivedAt: number;
  readonly direction: Direction;
  /** Typed payload via the codec, decoded on first call and cached; throws PayloadError/FrameError. */
  decode<T = unknown>(): T;
}

/** A message to send: a command and its payload (built with the codec's encodePayload, or raw). */
export interface OutgoingMessage {
  command: string;
  payload?: Uint8Array;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * What a hook can do with a message (the seed's MessageHookOut). Return nothing (or `{}`) to
 * pass it on unchanged. Several fields may be combined (push and drop; log and misbehave).
 */
export interface HookResult {
  /** `drop`: handled here, not forwarded and not shown to later hooks */
  action?: 'pass' | 'drop';
  /** replace the message; it is re-validated by the codec and continues down the chain */
  replace?: OutgoingMessage;
  /** send these messages to the peer (local answers) */
  push?: OutgoingMessage[];
  /** add to the peer's misbehaviour score; at the configured threshold it is banned */
  misbehave?: number | { points: number; reason: string };
  /** ban the peer's address (duration like "24h", default from config) and disconnect it */
  ban?: true | { reason: string; duration?: string | number };
  /** disconnect the peer (with a reason for the log) */
  disconnect?: true | string;
  /** a structured log line attributed to this hook */
  log?: string | { level?: LogLevel; msg: string; [field: string]: unknown };
}

export type HookReturn = HookResult | void | undefined | null;

/**
 * A connection the proxy has just accepted, before anything is read from it and before a
 * backend connection is opened (onAccept; since API 1.2).
 */
export interface HookConnection {
  /** the peer's real address, normalised (an IPv4-mapped IPv6 address is given as IPv4) */
  readonly address: string;
  readonly port: number;
  /** the proxy's address and port the peer connected to (which listener) */
  readonly localAddress: string;
  readonly localPort: number;
}

/** What onAccept may decide. Return nothing (or `{}`) to accept. */
export interface AcceptResult {
  /** refuse the connection; the reason goes to the log (metrics count it as `hook`) */
  refuse?: string;
  /** ban the address (duration like "24h" or seconds, default from config) and refuse it */
  ban?: true | { reason: string; duration?: string | number };
  /** a structured log line attributed to this hook */
  log?: string | { level?: LogLevel; msg: string; [field: string]: unknown };
}

export type AcceptReturn = AcceptResult | void | undefined | null;
export type MaybePromise<T> = T | Promise<T>;

export interface HookLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface HookCounter {
  inc(labels?: Record<string, string>, value?: number): void;
}
export interface HookGauge {
  set(value: number, labels?: Record<string, string>): void;
  inc(labels?: Record<string, string>, value?: number): void;
  dec(labels?: Record<string, string>, value?: number): void;
}
export interface HookHistogram {
  observe(value: number, labels?: Record<string, string>): void;
}

/** Prometheus metrics for a hook; names get the prefix `bhp_hook_`. Labels must stay low-cardinality. */
export interface HookMetrics {
  counter(name: string, help: string, labelNames?: string[]): HookCounter;
  gauge(name: string, help: string, labelNames?: string[]): HookGauge;
  histogram(name: string, help: string, labelNames?: string[], buckets?: number[]): HookHistogram;
}

/** One module of the running chain, as ctx.chainInfo() reports it. */
export interface HookChainEntry {
  /** the module's name in the chain (its declared name, with #2, #3 for a repeated module) */
  readonly name: string;
  /** the x: commands it registered */
  readonly xCommands: readonly string[];
}

/** What the runtime gives a hook at init and on every call. */
export interface HookContext {
  /** the module's name as declared */
  readonly name: string;
  /** network name: mainnet, testnet3, testnet4, signet, regtest, or custom-xxxxxxxx */
  readonly network: string;
  readonly log: HookLogger;
  readonly metrics: HookMetrics;
  /** every peer connected now */
  peers(): HookPeer[];
  /**
   * The modules of the chain this hook belongs to, in order (read-only; since API 1.1). Complete
   * once the chain has loaded; during init() it lists only the modules loaded so far.
   */
  chainInfo(): readonly HookChainEntry[];
  /**
   * Send a message to a peer outside a message callback (e.g. after an async payment check).
   * x: commands only reach peers that announced X_FEATURE_ID. Returns false if not sent.
   */
  send(peerId: number, message: OutgoingMessage): boolean;
  /** Disconnect a peer outside a message callback. */
  disconnect(peerId: number, reason: string): void;
  /** Add misbehaviour points to a peer outside a message callback. */
  misbehave(peerId: number, points: number, reason: string): void;
  /**
   * Mark a peer as holding a paid tier, or no longer (since API 1.3). A priority peer is
   * protected from eviction; a peer admitted into one of the reserved slots
   * (`limits.reservedPeers`) must be marked within `limits.reservedAuthTimeout` or it is
   * disconnected. Returns false if the peer is gone.
   */
  setPriority(peerId: number, priority: boolean): boolean;
  /**
   * Key-value and counters namespaced to this hook (since API 1.3): in this process's memory,
   * or in Redis shared by every proxy when the config has `store: { redis: URL }`. Never call
   * it per relayed message: keep a local copy and refresh it.
   */
  readonly store: HookStore;
}

/** What an admin route handler receives: the JSON body (POST, PUT, DELETE) or the query parameters (GET). */
export type HookAdminInput = Record<string, unknown>;

/**
 * One route of a hook on the admin API (since API 1.3), served at `/hooks/<name>/<route>` with
 * the admin bearer token. `input` validates the request (a zod schema fits); a failure is a 400
 * naming the field. The handler's result is sent as JSON (bigints as decimal strings); throw
 * HookAdminError for a 4xx answer, anything else is a 500.
 */
export interface HookAdminRoute<I = HookAdminInput> {
  input?: OptionsSchema<I>;
  handler(input: I, ctx: HookContext): MaybePromise<unknown>;
}

/** Thrown by an admin route handler: answered with `status` (400-499) and `{ error: message }`. */
export class HookAdminError extends Error {
  override readonly name = 'HookAdminError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A hook's share of the proxy's store (ctx.store). Keys are namespaced by the hook's name, so
 * two hooks never see each other's keys. Values are strings; counters are integers kept
 * within ±2^53 (Number.MAX_SAFE_INTEGER: 90,071 BTC in msat). Every operation is atomic on
 * its key, across every proxy sharing the store. When a shared store is unreachable the
 * operation rejects with StoreUnavailableError (`code: 'store_unavailable'`): answer "try
 * again later", never act as if it succeeded.
 */
export interface HookStore {
  /** true when other proxies see the same keys (Redis); false: this process only */
  readonly shared: boolean;
  get(key: string): Promise<string | null>;
  /** ttlSeconds: the key disappears that long after (default: never) */
  set(key: string, value: string, options?: StoreTtl): Promise<void>;
  /** Set only if the key is absent; true when this call set it (claim a payment hash once). */
  setNX(key: string, value: string, options?: StoreTtl): Promise<boolean>;
  /**
   * Add `delta` (may be negative) to an integer counter (absent = 0) and return the new value.
   * `floor: 0n` clamps at zero in the same atomic step: a balance debited by two proxies at
   * once never goes below zero.
   */
  incrBy(key: string, delta: bigint, options?: { floor?: 0n }): Promise<bigint>;
  /** true when the key existed */
  delete(key: string): Promise<boolean>;
  /** set a key's time to live; false when the key does not exist */
  expire(key: string, seconds: number): Promise<boolean>;
}

export interface StoreTtl {
  ttlSeconds?: number;
}

/** A schema for the module's options: zod's schemas fit, as does anything with this shape. */
export interface OptionsSchema<O> {
  safeParse(input: unknown): { success: true; data: O } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
}

export type Wants = readonly string[] | '*';
export type WantsByDirection = { inbound?: Wants; outbound?: Wants };

/** The default export of a hook module (the seed's MessageHook). */
export interface HookModule<O = Record<string, unknown>> {
  /** HOOK_API_VERSION the module was written for */
  apiVersion: string;
  name: string;
  /**
   * Commands this hook wants per direction; `*` for all. Frames nobody wants bypass the chain.
   * A function receives the validated options, so the set can follow them (a deny-list hook
   * wants only the commands it lists); it is called once per load, before init().
   */
  wants?: WantsByDirection | ((options: O) => WantsByDirection);
  /** validates `options:` from the YAML at load; errors name the module and the key */
  options?: OptionsSchema<O>;
  init?(options: O, ctx: HookContext): MaybePromise<void>;
  /**
   * A peer connected and nothing has been read yet; bitcoind has not been contacted. Refuse or
   * ban it here and it costs bitcoind nothing. Runs in chain order under the hook time limit;
   * the first refusal or ban ends the chain. A throw, timeout or malformed result refuses the
   * connection (`hook_error`).
   */
  onAccept?(conn: HookConnection, ctx: HookContext): MaybePromise<AcceptReturn>;
  onConnect?(peer: HookPeer, ctx: HookContext): MaybePromise<HookReturn>;
  onMessage?(msg: HookMessage, peer: HookPeer, ctx: HookContext): MaybePromise<HookReturn>;
  onDisconnect?(peer: HookPeer, reason: string, ctx: HookContext): void;
  /** handlers for private x: commands sent by peers; x: frames never reach bitcoind */
  commands?: Record<string, (msg: HookMessage, peer: HookPeer, ctx: HookContext) => MaybePromise<HookReturn>>;
  /**
   * BIP 434 feature messages to announce to this peer (version >= 70017), sent between
   * bitcoind's version and its verack.
   */
  features?(peer: HookPeer, ctx: HookContext): { id: string; data?: Uint8Array }[];
  /**
   * Routes on the admin API, keyed `"METHOD route"` (GET, POST, PUT or DELETE; a route is
   * lowercase letters, digits, `-` and `_`), e.g. `'GET grants'` at `GET /hooks/<name>/grants`
   * (since API 1.3). Either a handler function (unvalidated input) or `{ input, handler }`.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  admin?: Record<string, HookAdminRoute<any> | ((input: HookAdminInput, ctx: HookContext) => MaybePromise<unknown>)>;
  close?(): MaybePromise<void>;
}

/** Identity helper that gives a module author type checking: `export default defineHook({...})`. */
export function defineHook<O>(module: HookModule<O>): HookModule<O> {
  return module;
}
