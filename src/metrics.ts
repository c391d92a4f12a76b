import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { knownCommands } from './codec/index.js';
import type { HookCounter, HookGauge, HookHistogram, HookMetrics } from './hooks/api.js';
import type { HookCallCounters, HookRuntimeObserver } from './hooks/chain.js';
import { FastHistogram } from './fast-histogram.js';
import { formatHostPort } from './config-values.js';
import { readiness, type HealthSource } from './health.js';
import type { CloseReason, Direction, ProxyObserver, RefuseReason, SocksCounts } from './proxy/observer.js';


/**
 * Prometheus metrics, prefix bhp_. Per-message counts are kept in plain numbers on the hot
 * path and copied into the counters when Prometheus scrapes (no label hashing per frame).
 * Commands we have no codec for are counted as "other" so a peer cannot inflate cardinality.
 */
interface FrameCount {
  n: number;
  bytes: number;
  command: string;
  direction: Direction;
}

export class ProxyMetrics implements ProxyObserver, HookRuntimeObserver {
  readonly registry = new Registry();
  readonly #known = new Set(knownCommands());
  readonly #counts = { inbound: new Map<string, FrameCount>(), outbound: new Map<string, FrameCount>() };
  readonly #connections: Gauge;
  readonly #accepted: Counter;
  readonly #refused: Counter;
  readonly #closedBy: Counter;
  readonly #duration: Histogram;
  readonly #protocolErrors: Counter;
  readonly #backendFailures: Counter;
  readonly #v2Passthrough: Counter;
  readonly #v2Sessions: Counter;
  readonly #v2Failures: Counter;
  readonly #bansAdded: Counter;
  readonly #bans: Gauge;
  readonly #banWriteFailures: Counter;
  readonly #bansEvicted: Counter;
  readonly #misbehaviour: Counter;
  readonly #hookCalls: FastHistogram;
  readonly #hookErrors: Counter;
  /** hook → action → count; copied into bhp_hook_actions_total at scrape time */
  readonly #hookActions = new Map<string, Map<string, number>>();
  /** hook → the counters the chain bumps per call (calls, and passes: bhp_hook_actions_total{action="pass"}) */
  readonly #hookCounters = new Map<string, HookCallCounters>();
  readonly #xCommands: Counter;
  readonly #hookCallSeries = new Map<string, (v: number) => void>();
  readonly #reloadSuccess: Gauge;
  /** metric names hooks created (the rest of the registry is the proxy's own) */
  readonly #hookOwned = new Set<string>();
  #health: HealthSource | null = null;
  readonly #hookBudget = { throttle: 0, disconnect: 0 };
  /** "reason outcome" → count of rate-limited log lines; copied into bhp_log_lines_total at scrape time */
  readonly #logLines = new Map<string, { reason: string; outcome: string; n: number }>();

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'bhp_' });
    this.#connections = new Gauge({ name: 'bhp_connections', help: 'Peer sessions open now', registers });
    this.#accepted = new Counter({ name: 'bhp_connections_accepted_total', help: 'Peer connections accepted and relayed to the backend', registers });
    this.#refused = new Counter({ name: 'bhp_connections_refused_total', help: 'Peer connections refused at accept, by reason', labelNames: ['reason'], registers });
    this.#closedBy = new Counter({ name: 'bhp_connections_closed_total', help: 'Peer sessions closed, by reason', labelNames: ['reason'], registers });
    this.#duration = new Histogram({
      name: 'bhp_session_duration_seconds',
      help: 'How long peer sessions lasted',
      buckets: [1, 10, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600],
      registers,
    });
    const counts = this.#counts;
    const collectInto = (field: 'n' | 'bytes') =>
      function (this: Counter) {
        this.reset();
        for (const dir of [counts.inbound, counts.outbound]) for (const c of new Set(dir.values())) this.inc({ command: c.command, direction: c.direction }, c[field]);
      };
    new Counter({ name: 'bhp_messages_total', help: 'P2P messages received from peers (inbound) and from bitcoind (outbound), by command and direction, counted before the hooks (ones they drop and x: commands included)', labelNames: ['command', 'direction'], registers, collect: collectInto('n') });
    new Counter({ name: 'bhp_message_bytes_total', help: 'P2P message bytes (header included), by command and direction', labelNames: ['command', 'direction'], registers, collect: collectInto('bytes') });
    this.#protocolErrors = new Counter({ name: 'bhp_protocol_errors_total', help: 'Frame-level protocol violations, by code', labelNames: ['code'], registers });
    this.#backendFailures = new Counter({ name: 'bhp_backend_connect_failures_total', help: 'Failed connections to the backend node', registers });
    this.#v2Passthrough = new Counter({ name: 'bhp_v2_passthrough_total', help: 'Sessions piped raw because the peer opened with BIP324 v2', registers });
    this.#v2Sessions = new Counter({ name: 'bhp_v2_sessions_total', help: 'BIP324 v2 handshakes completed at the proxy, by the proxy\'s role', labelNames: ['role'], registers });
    this.#v2Failures = new Counter({ name: 'bhp_v2_failures_total', help: 'BIP324 v2 connections closed for a transport failure, by reason', labelNames: ['reason'], registers });
    this.#bansAdded = new Counter({ name: 'bhp_bans_added_total', help: 'Bans added, by reason', labelNames: ['reason'], registers });
    const self = this;
    // counted when scraped, expired ones left out (they end silently); between changes otherwise
    this.#bans = new Gauge({
      name: 'bhp_bans',
      help: 'Bans in force',
      registers,
      aggregator: 'max', // workers hold the same list
      collect(this: Gauge) {
        const bans = self.#health?.bans;
        if (bans) this.set(bans.size);
      },
    });
    this.#bansEvicted = new Counter({ name: 'bhp_bans_evicted_total', help: 'Automatic bans dropped early to make room for a new one (bans.maxAutomatic reached)', registers });
    this.#banWriteFailures = new Counter({ name: 'bhp_ban_write_failures_total', help: 'Failed writes of the ban file (each is retried; bans stay enforced in memory)', registers });
    this.#misbehaviour = new Counter({ name: 'bhp_misbehaviour_events_total', help: 'Misbehaviour events, by reason', labelNames: ['reason'], registers });
    const hookCounters = this.#hookCounters;
    new Counter({
      name: 'bhp_hook_calls_total',
      help: 'Hook calls (onMessage, x: commands, onConnect, features, onAccept), by hook',
      labelNames: ['hook'],
      registers,
      collect(this: Counter) {
        this.reset();
        for (const [hook, c] of hookCounters) this.inc({ hook }, c.calls);
      },
    });
    this.#hookCalls = new FastHistogram(
      this.registry,
      'bhp_hook_invocation_seconds',
      'Time spent in one hook call, by hook: every call while calls are slow, a sample when they are fast and many (bhp_hook_calls_total counts them all)',
      'hook',
      [
        0.00001, 0.0001, 0.001, 0.01, 0.1, 1, 5,
      ],
    );
    this.#hookErrors = new Counter({ name: 'bhp_hook_errors_total', help: 'Hook incompatibilities (throw, malformed, timeout, invalid_message), by hook', labelNames: ['hook', 'kind'], registers });
    const actions = this.#hookActions;
    new Counter({
      name: 'bhp_hook_actions_total',
      help: 'What hook results did, by hook and action',
      labelNames: ['hook', 'action'],
      registers,
      collect(this: Counter) {
        this.reset();
        for (const [hook, byAction] of actions) for (const [action, n] of byAction) this.inc({ hook, action }, n);
        for (const [hook, c] of hookCounters) if (c.passes > 0) this.inc({ hook, action: 'pass' }, c.passes);
      },
    });
    const budget = this.#hookBudget;
    new Counter({
      name: 'bhp_hook_budget_exceeded_total',
      help: 'Peers that used up their hook time budget (limits.hookBudget), by what was done: throttle or disconnect',
      labelNames: ['action'],
      registers,
      collect(this: Counter) {
        this.reset();
        for (const action of ['throttle', 'disconnect'] as const) this.inc({ action }, budget[action]);
      },
    });
    const logLines = this.#logLines;
    new Counter({
      name: 'bhp_log_lines_total',
      help: 'Log lines peers can trigger frame by frame, by reason and outcome (written, or suppressed by limits.logLinesPerMinute)',
      labelNames: ['reason', 'outcome'],
      registers,
      collect(this: Counter) {
        this.reset();
        for (const c of logLines.values()) this.inc({ reason: c.reason, outcome: c.outcome }, c.n);
      },
    });
    this.#xCommands = new Counter({ name: 'bhp_x_commands_total', help: 'x: commands from peers, by outcome (handled, unknown, refused)', labelNames: ['outcome'], registers });
    new Gauge({ name: 'bhp_build_info', help: 'Always 1; the labels say which proxy version runs on which Node.js', labelNames: ['version', 'node'], registers, aggregator: 'max' }).set(
      { version: PACKAGE_VERSION, node: process.version },
      1,
    );
    new Gauge({
      name: 'bhp_backend_up',
      help: 'Whether the last connection to the backend node succeeded (1) or failed (0); absent until the first attempt',
      labelNames: ['backend'],
      registers,
      aggregator: 'min',
      collect(this: Gauge) {
        this.reset();
        const h = self.#health;
        if (h && h.backendUp !== null) this.set({ backend: formatHostPort(h.settings.backend) }, h.backendUp ? 1 : 0);
      },
    });
    new Gauge({
      name: 'bhp_store_up',
      help: 'Whether the shared store (Redis) answers (1) or not (0: serving on local state); absent without a shared store',
      registers,
      aggregator: 'min',
      collect(this: Gauge) {
        this.reset();
        const up = self.#health?.storeUp ?? null;
        if (up !== null) this.set(up ? 1 : 0);
      },
    });
    this.#reloadSuccess = new Gauge({ name: 'bhp_config_reload_success', help: 'Whether the last config reload succeeded (1; also at start) or was refused (0)', registers, aggregator: 'min' });
    this.#reloadSuccess.set(1);
  }

  /** The proxy whose listeners and backend state /ready and bhp_backend_up report. */
  watch(source: HealthSource): void {
    this.#health = source;
  }

  /** After a reload: refused reloads keep the old config running, and the gauge says so. */
  configReloaded(ok: boolean): void {
    this.#reloadSuccess.set(ok ? 1 : 0);
  }

  // HookRuntimeObserver
  counters(hook: string): HookCallCounters {
    let c = this.#hookCounters.get(hook);
    if (!c) this.#hookCounters.set(hook, (c = { calls: 0, passes: 0 }));
    return c;
  }
  invocation(hook: string, seconds: number): void {
    let observe = this.#hookCallSeries.get(hook);
    if (!observe) {
      observe = this.#hookCalls.series(hook);
      this.#hookCallSeries.set(hook, observe);
    }
    observe(seconds);
  }
  error(hook: string, kind: string): void {
    this.#hookErrors.inc({ hook, kind });
  }
  action(hook: string, action: string): void {
    let byAction = this.#hookActions.get(hook);
    if (!byAction) this.#hookActions.set(hook, (byAction = new Map()));
    byAction.set(action, (byAction.get(action) ?? 0) + 1);
  }
  xCommand(outcome: 'handled' | 'unknown' | 'refused'): void {
    this.#xCommands.inc({ outcome });
  }

  /**
   * Metrics for hook authors, named bhp_hook_<name>; the same name returns the same metric
   * (reloads). A name that is the proxy's own (bhp_hook_errors_total from 'errors_total', or
   * any bhp_ name the proxy registered) is refused with an error naming it, at the hook's init.
   */
  hookMetrics(): HookMetrics {
    const registry = this.registry;
    const hookOwned = this.#hookOwned;
    const getOrCreate = <M extends Metric>(name: string, make: (full: string) => M): M => {
      const full = name.startsWith('bhp_') ? name : `bhp_hook_${name}`;
      const existing = registry.getSingleMetric(full) as M | undefined;
      if (existing && !hookOwned.has(full)) throw new Error(`hook metric "${name}" would be ${full}, a metric of the proxy itself: choose another name (hooks usually prefix theirs with the hook's name)`);
      if (existing) return existing;
      const created = make(full);
      hookOwned.add(full);
      return created;
    };
    return {
      counter: (name, help, labelNames = []) => {
        const c = getOrCreate(name, (n) => new Counter({ name: n, help, labelNames, registers: [registry] }));
        return { inc: (labels, value) => (labels ? c.inc(labels, value ?? 1) : c.inc(value ?? 1)) } satisfies HookCounter;
      },
      gauge: (name, help, labelNames = []) => {
        const g = getOrCreate(name, (n) => new Gauge({ name: n, help, labelNames, registers: [registry] }));
        return {
          set: (value, labels) => (labels ? g.set(labels, value) : g.set(value)),
          inc: (labels, value) => (labels ? g.inc(labels, value ?? 1) : g.inc(value ?? 1)),
          dec: (labels, value) => (labels ? g.dec(labels, value ?? 1) : g.dec(value ?? 1)),
        } satisfies HookGauge;
      },
      histogram: (name, help, labelNames = [], buckets) => {
        const h = getOrCreate(name, (n) => new Histogram({ name: n, help, labelNames, registers: [registry], ...(buckets ? { buckets } : {}) }));
        return { observe: (value, labels) => (labels ? h.observe(labels, value) : h.observe(value)) } satisfies HookHistogram;
      },
    };
  }

  connectionAccepted(): void {
    this.#accepted.inc();
  }
  connectionRefused(reason: RefuseReason): void {
    this.#refused.inc({ reason });
  }
  sessionOpened(): void {
    this.#connections.inc();
  }
  sessionClosed(reason: CloseReason, durationSeconds: number): void {
    this.#connections.dec();
    this.#closedBy.inc({ reason });
    this.#duration.observe(durationSeconds);
  }
  frames(direction: Direction, command: string, count: number, bytes: number): void {
    const map = this.#counts[direction];
    let c = map.get(command);
    if (!c) {
      const cmd = this.#known.has(command) ? command : 'other';
      c = map.get(cmd) ?? { n: 0, bytes: 0, command: cmd, direction };
      map.set(cmd, c);
      if (map.size < 1000) map.set(command, c); // unknown names share the "other" entry; bounded
    }
    c.n += count;
    c.bytes += bytes;
  }
  protocolError(code: string): void {
    this.#protocolErrors.inc({ code });
  }
  backendConnectFailed(): void {
    this.#backendFailures.inc();
  }
  v2Passthrough(): void {
    this.#v2Passthrough.inc();
  }

  v2Session(role: 'initiator' | 'responder'): void {
    this.#v2Sessions.inc({ role });
  }

  v2Failure(reason: string): void {
    this.#v2Failures.inc({ reason });
  }
  banAdded(reason: string): void {
    this.#bansAdded.inc({ reason });
  }
  bansCurrent(count: number): void {
    this.#bans.set(count);
  }
  banEvicted(): void {
    this.#bansEvicted.inc();
  }
  banWriteFailed(): void {
    this.#banWriteFailures.inc();
  }
  misbehaviour(reason: string): void {
    this.#misbehaviour.inc({ reason: reason.split(':')[0]!.slice(0, 40) });
  }

  hookBudgetExceeded(action: 'throttle' | 'disconnect'): void {
    this.#hookBudget[action]++;
  }
  logLine(reason: string, outcome: 'written' | 'suppressed'): void {
    const key = `${reason} ${outcome}`;
    const c = this.#logLines.get(key);
    if (c) c.n++;
    else this.#logLines.set(key, { reason, outcome, n: 1 });
  }

  /** The SOCKS5 front (outbound mode) started: its counters are published from now on, at scrape time. */
  socksCounts(counts: SocksCounts): void {
    if (this.registry.getSingleMetric('bhp_socks_connections_total')) return; // one front a process
    const registers = [this.registry];
    const plain = (name: string, help: string, value: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect(this: Counter) {
          this.reset();
          this.inc(value());
        },
      });
    plain('bhp_socks_connections_total', 'Connections our node opened to the SOCKS5 front, taken for negotiation', () => counts.accepted);
    plain('bhp_socks_sessions_total', 'SOCKS5 requests that became P2P sessions through the hook chain', () => counts.sessions);
    plain('bhp_socks_protocol_errors_total', 'SOCKS5 negotiations that broke the protocol or timed out', () => counts.protocolErrors);
    new Counter({
      name: 'bhp_socks_refused_total',
      help: 'SOCKS5 connections refused, by reply (max_connections: closed at once, no reply)',
      labelNames: ['reply'],
      registers,
      collect(this: Counter) {
        this.reset();
        if (counts.overLimit > 0) this.inc({ reply: 'max_connections' }, counts.overLimit);
        for (const [reply, n] of counts.refused) this.inc({ reply }, n);
      },
    });
    new Counter({
      name: 'bhp_socks_auth_total',
      help: 'SOCKS5 negotiations, by the authentication method chosen',
      labelNames: ['method'],
      registers,
      collect(this: Counter) {
        this.reset();
        this.inc({ method: 'none' }, counts.methods.none);
        this.inc({ method: 'userpass' }, counts.methods.userpass);
      },
    });
  }

  /**
   * GET /metrics, /health and /ready on its own listener, no token (like the admin API's
   * /health and /ready): probes and Prometheus share the one loopback port.
   */
  serve(host: string, port: number): Promise<http.Server> {
    const server = http.createServer((req, res) => {
      const route = req.method === 'GET' ? (req.url ?? '').split('?')[0] : null;
      if (route === '/health') return void sendJson(res, 200, { status: 'ok' });
      if (route === '/ready') {
        const r = this.#health ? readiness(this.#health) : { ready: false, backendUp: null, listening: [] };
        return void sendJson(res, r.ready ? 200 : 503, r);
      }
      if (route !== '/metrics') {
        res.writeHead(404).end('not found\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
    });
    return listenHttp(server, host, port);
  }
}

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
}

/**
 * Connections an HTTP listener (metrics, admin) keeps per client address and in all: clients
 * that never finish a request must not take the file descriptors that peers and bitcoind's
 * connections need (an exhausted process sees EMFILE and refuses every peer as backend_down).
 */
const HTTP_MAX_PER_ADDRESS = 16;
const HTTP_MAX_CONNECTIONS = 256;

export function listenHttp(server: http.Server, host: string, port: number): Promise<http.Server> {
  limitConnections(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function limitConnections(server: http.Server): void {
  server.maxConnections = HTTP_MAX_CONNECTIONS;
  // a request's headers within 10 s, all of it within 30 s (Node's defaults: 60 s and 5 min)
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const open = new Map<string, number>();
  server.on('connection', (socket: net.Socket) => {
    const address = socket.remoteAddress ?? '';
    const n = (open.get(address) ?? 0) + 1;
    if (n > HTTP_MAX_PER_ADDRESS) return void socket.destroy();
    open.set(address, n);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}
