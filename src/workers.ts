/**
 * `workers: N`: N processes (node:cluster) sharing the P2P listeners, and one primary that
 * holds what must be one: the ban list and its file, the store (memory or Redis), the admin
 * API and the metrics endpoint (prom-client's AggregatorRegistry sums the workers' metrics).
 *
 * Bans: a worker's ban goes up to the primary, which saves it, publishes it (Redis) and sends it
 * down to every worker; the admin API bans through the primary the same way. SIGHUP reloads
 * every worker; a worker that dies is logged and replaced; SIGTERM drains them all, then the
 * primary saves the bans and exits.
 */
import cluster, { type Worker } from 'node:cluster';
import * as http from 'node:http';
import { AggregatorRegistry, Registry } from 'prom-client';
import { proxySettings, startProxy, type RunningProxy } from './app.js';
import { serveAdmin } from './admin.js';
import { loadConfig, type Config } from './config.js';
import type { Readiness } from './health.js';
import { trapReload, trapShutdown } from './lifecycle.js';
import { createLogger, type Logger } from './logging.js';
import { ProxyMetrics, listenHttp } from './metrics.js';
import { BanList, checkBanFileWritable } from './proxy/ban-list.js';
import { ConnectionLimits } from './proxy/connection-limits.js';
import { peerInfoJson } from './proxy/peer-info.js';
import { ProxyServer } from './proxy/proxy-server.js';
import { IpcStore, isToWorker, type ToPrimary, type ToWorker, type WorkerQuestion } from './store/ipc-store.js';
import { openStore, type ProxyStore } from './store/index.js';

/** a crashed worker is replaced after this delay (a worker that crashes at start must not spin) */
const RESTART_DELAY_MS = 1000;
const ASK_TIMEOUT_MS = 5000;

/** What a worker runs: the config without the listeners and the file the primary owns. */
function workerConfig(c: Config): Config {
  return { ...c, metrics: null, admin: null, bans: { ...c.bans, file: null } };
}

export function isWorker(): boolean {
  return cluster.isWorker;
}

/** In a worker: the proxy on the shared listeners, its state through the primary. */
export async function runWorker(configFile: string): Promise<number> {
  const config = workerConfig(loadConfig(configFile));
  const send = (m: ToPrimary) => process.send?.(m);
  const store = new IpcStore({ send, on: (e, l) => process.on(e, l) }, config.store !== null);
  const shutdown = trapShutdown(); // a signal while starting stops the worker gracefully once up
  process.on('SIGHUP', () => {}); // the primary forwards reloads; a HUP sent to the whole group must not kill workers, starting or not
  // answered from the start: a question while the hooks load must not wait out the primary's timeout
  let running: RunningProxy | null = null;
  process.on('message', (m: unknown) => {
    if (!isToWorker(m) || m.bhp !== 'ask') return;
    void answer(running, configFile, m.what).then(
      (value) => send({ bhp: 'reply', id: m.id, value }),
      (err: Error) => send({ bhp: 'reply', id: m.id, value: { error: err.message } }),
    );
  });
  running = await startProxy(config, { store, slotGate: store, configFile });
  return shutdown.until(running);
}

async function answer(running: RunningProxy | null, configFile: string, what: WorkerQuestion): Promise<unknown> {
  if (what === 'metrics') return running ? running.metrics.registry.getMetricsAsJSON() : []; // nothing counted yet
  if (!running) throw new Error('the worker is starting');
  if (what === 'peers') return running.proxy.sessions().map((s) => ({ ...peerInfoJson(s.info), worker: cluster.worker?.id }));
  if (what === 'ready') {
    const { readiness } = await import('./health.js');
    return readiness(running.proxy);
  }
  return running.reload(workerConfig(loadConfig(configFile)));
}

/** In the primary: fork the workers and serve admin and metrics for all of them. */
export async function runPrimary(config: Config, configFile: string): Promise<number> {
  const log: Logger = createLogger(config.log.level).child({ role: 'primary' });
  const reloads = trapReload(); // a SIGHUP while the workers start reloads them once up
  if (config.bans.file) {
    const problem = await checkBanFileWritable(config.bans.file);
    if (problem) throw new Error(problem);
  }
  // what only the primary sees (its ban file, admin bans, refused reloads), summed into /metrics with the workers'
  const metrics = new ProxyMetrics({ defaultMetrics: false });
  const bans = new BanList(config.bans.file, { log: log.child({ component: 'bans' }), onWriteFailure: () => metrics.banWriteFailed(), maxAutomatic: config.bans.maxAutomatic });
  await bans.load();
  const store: ProxyStore = await openStore(config.store, log.child({ component: 'store' }));
  const workers = new Map<number, Worker>();
  /**
   * Send to a worker unless its channel is closed: between a worker's death ('disconnect') and
   * its 'exit' it is still listed, and a send then would be an 'error' event that kills the primary.
   */
  const sendTo = (w: Worker, m: ToWorker): boolean => w.isConnected() && w.send(m);
  const broadcast = (m: ToWorker) => {
    for (const w of workers.values()) sendTo(w, m);
  };
  // the primary's ProxyServer never listens: it is the ban list's owner for the admin API
  const control = new ProxyServer({
    settings: proxySettings(config),
    bans,
    log,
    observer: metrics,
    banSync: {
      kind: store.kind,
      get up() {
        return store.up;
      },
      banAdded(ban) {
        store.banAdded(ban);
        broadcast({ bhp: 'shared-ban', ban });
      },
      banRemoved(subnet) {
        store.banRemoved(subnet);
        broadcast({ bhp: 'shared-unban', subnet });
      },
    },
  });
  store.attachBans({
    applySharedBan: (ban) => {
      control.applySharedBan(ban);
      broadcast({ bhp: 'shared-ban', ban });
    },
    applySharedUnban: (subnet) => {
      control.applySharedUnban(subnet);
      broadcast({ bhp: 'shared-unban', subnet });
    },
    localBans: () => control.localBans(),
  });
  // per-address and per-subnet slots over every worker (maxPeers stays per worker: eviction is local)
  const slots = new ConnectionLimits({ ...config.limits, maxPeers: Number.POSITIVE_INFINITY });
  const held = new Map<number, Map<string, number>>();
  const releaseSlot = (workerId: number, address: string) => {
    const mine = held.get(workerId);
    const n = mine?.get(address) ?? 0;
    if (n <= 0) return;
    if (n === 1) mine!.delete(address);
    else mine!.set(address, n - 1);
    slots.release(address);
  };
  let storeUp = store.up;
  const storeWatch = setInterval(() => {
    if (store.up !== storeUp) broadcast({ bhp: 'store-up', up: (storeUp = store.up) });
  }, 500).unref();

  // questions to workers (peers, readiness, reload), answered by id
  let nextAsk = 1;
  const asks = new Map<number, (v: unknown) => void>();
  const ask = (w: Worker, what: WorkerQuestion): Promise<unknown> =>
    new Promise((resolve) => {
      if (!w.isConnected()) return resolve({ error: `worker ${w.id} is gone` });
      const id = nextAsk++;
      const timer = setTimeout(() => {
        asks.delete(id);
        resolve({ error: `worker ${w.id} did not answer within ${ASK_TIMEOUT_MS} ms` });
      }, ASK_TIMEOUT_MS);
      asks.set(id, (v) => {
        clearTimeout(timer);
        resolve(v);
      });
      sendTo(w, { bhp: 'ask', id, what });
    });
  const askAll = (what: WorkerQuestion, of: Iterable<Worker> = workers.values()) => Promise.all([...of].map((w) => ask(w, what)));
  /** workers that listen: one still loading (a replacement) has counted nothing and may not read IPC yet */
  const listening = new Set<Worker>();

  const onMessage = (w: Worker, m: unknown) => {
    if (!isToWorker(m)) return; // same envelope check both ways: an object with a string `bhp`
    const msg = m as unknown as ToPrimary;
    switch (msg.bhp) {
      case 'hello':
        for (const ban of bans.list()) sendTo(w, { bhp: 'shared-ban', ban });
        sendTo(w, { bhp: 'store-up', up: store.up });
        return;
      case 'ban': {
        const merged = bans.merge(msg.ban);
        if (!merged) return;
        store.banAdded(merged);
        broadcast({ bhp: 'shared-ban', ban: merged });
        return;
      }
      case 'unban':
        if (bans.remove(msg.subnet)) {
          store.banRemoved(msg.subnet);
          broadcast({ bhp: 'shared-unban', subnet: msg.subnet });
        }
        return;
      case 'kv':
        return void kv(store, msg.ns, msg.op, msg.args).then(
          (value) => sendTo(w, { bhp: 'kv-reply', id: msg.id, ok: true, value }),
          (err: Error) => sendTo(w, { bhp: 'kv-reply', id: msg.id, ok: false, name: err.name, message: err.message }),
        );
      case 'slot': {
        const refused = slots.check(msg.address);
        if (!refused) {
          slots.acquire(msg.address);
          const mine = held.get(w.id) ?? new Map<string, number>();
          held.set(w.id, mine.set(msg.address, (mine.get(msg.address) ?? 0) + 1));
        }
        sendTo(w, { bhp: 'slot-reply', id: msg.id, refused });
        return;
      }
      case 'unslot':
        return releaseSlot(w.id, msg.address);
      case 'reply':
        asks.get(msg.id)?.(msg.value);
        asks.delete(msg.id);
        return;
    }
  };

  let stopping = false;
  cluster.setupPrimary({ serialization: 'advanced' }); // bigint counters cross the channel as they are
  const fork = () => {
    const w = cluster.fork();
    workers.set(w.id, w);
    w.once('listening', () => listening.add(w));
    // a write to a channel that broke meanwhile (EPIPE): the worker is dying, its 'exit' follows
    w.on('error', (err: Error) => log.warn({ worker: w.id, err: err.message }, 'message to a worker failed'));
    w.on('message', (m: unknown) => onMessage(w, m));
    w.on('exit', (code, signal) => {
      workers.delete(w.id);
      listening.delete(w);
      // its peers are gone with it
      for (const [address, n] of held.get(w.id) ?? []) for (let i = 0; i < n; i++) slots.release(address);
      held.delete(w.id);
      if (stopping) return;
      log.error({ worker: w.id, pid: w.process.pid, code, signal }, 'worker exited; starting another');
      setTimeout(() => !stopping && fork(), RESTART_DELAY_MS).unref();
    });
  };
  for (let i = 0; i < config.workers; i++) fork();
  log.info({ workers: config.workers, store: store.kind }, 'workers started');

  const readinessAll = async (): Promise<Readiness> => {
    const each = (await askAll('ready')) as (Readiness & { error?: string })[];
    const ready = each.length === config.workers && each.every((r) => r.ready === true);
    const r: Readiness & { workers: unknown[] } = { ready, backendUp: each.every((x) => x.backendUp === true), listening: each[0]?.listening ?? [], workers: each };
    if (store.kind === 'redis') {
      r.degraded = !store.up;
      r.store = store.up ? 'up' : 'down';
    }
    return r;
  };
  const servers: http.Server[] = [];
  if (config.metrics) {
    // each listening worker's registry and the primary's own, combined metric by metric (sum, or its aggregator)
    const clusterMetrics = async (): Promise<string> => {
      const each = await askAll('metrics', [...listening].filter((w) => w.isConnected())); // a dead one's counters are gone with it
      const failed = each.find((m) => !Array.isArray(m));
      if (failed) throw new Error(`a worker did not report its metrics: ${JSON.stringify(failed)}`);
      return AggregatorRegistry.aggregate([...(each as object[]), await metrics.registry.getMetricsAsJSON()]).metrics();
    };
    const server = http.createServer((req, res) => {
      const route = req.method === 'GET' ? (req.url ?? '').split('?')[0] : null;
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
      if (route === '/health') return json(200, { status: 'ok' });
      if (route === '/ready') return void readinessAll().then((r) => json(r.ready ? 200 : 503, r));
      if (route !== '/metrics') return void res.writeHead(404).end('not found\n');
      clusterMetrics().then(
        (text) => res.writeHead(200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE }).end(text), // bhp_store_up: the workers report the primary's
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
    });
    servers.push(await listenHttp(server, config.metrics.listen.host, config.metrics.listen.port));
  }
  let current = config;
  const reloadWorkers = async (): Promise<string> => {
    const c = loadConfig(configFile); // a bad file is refused here, before any worker sees it
    control.updateSettings({ ...proxySettings(c), listen: current.listen, backend: current.backend, network: current.network });
    slots.settings = { ...c.limits, maxPeers: Number.POSITIVE_INFINITY };
    bans.maxAutomatic = c.bans.maxAutomatic;
    current = c;
    const answers = (await askAll('reload')) as unknown[];
    const failed = answers.filter((a) => typeof a !== 'string');
    if (failed.length) throw new Error(`reload refused by ${failed.length} worker(s): ${JSON.stringify(failed[0])}`);
    return `${answers.length} workers: ${String(answers[0])}`;
  };
  // bhp_config_reload_success: a config refused here never reaches a worker's gauge
  const reload = (): Promise<string> =>
    reloadWorkers().then(
      (what) => (metrics.configReloaded(true), what),
      (err: unknown) => (metrics.configReloaded(false), Promise.reject(err)),
    );
  if (config.admin) {
    servers.push(
      await serveAdmin(
        config.admin.token,
        {
          proxy: control,
          log: log.child({ component: 'admin' }),
          reload,
          peers: async () => ((await askAll('peers')) as unknown[][]).flatMap((p) => (Array.isArray(p) ? p : [])),
          readiness: readinessAll,
        },
        config.admin.listen.host,
        config.admin.listen.port,
      ),
    );
  }
  reloads.onReload(() => {
    log.info('SIGHUP: reloading every worker');
    reload().then(
      (what) => log.info({ what }, 'config reloaded'),
      (err: Error) => log.error({ err: err.message }, 'reload refused; the running config stays'),
    );
  });
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down: draining every worker');
      clearInterval(storeWatch);
      const exits = [...workers.values()].map((w) => new Promise((r) => (w.isDead() ? r(null) : w.once('exit', r))));
      for (const w of workers.values()) w.process.kill('SIGTERM');
      void Promise.all(exits)
        .then(async () => {
          for (const s of servers) s.closeAllConnections?.();
          await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
          await bans.save();
          bans.close();
          await store.close();
          log.info('all workers stopped');
        })
        .then(
          () => resolve(0),
          () => resolve(1),
        );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** One ctx.store operation of a worker, run on the primary's store. */
function kv(store: ProxyStore, ns: string, op: string, args: unknown[]): Promise<unknown> {
  const s = store.hookStore(ns) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const fn = s[op];
  if (typeof fn !== 'function' || !['get', 'set', 'setNX', 'incrBy', 'delete', 'expire'].includes(op)) return Promise.reject(new Error(`unknown store operation ${op}`));
  return fn(...args);
}

