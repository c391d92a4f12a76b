import type * as http from 'node:http';
import { adminExposure, loadConfig, socksExposure, type Config } from './config.js';
import { serveAdmin } from './admin.js';
import type { HookLogger } from './hooks/api.js';
import type { HookChain } from './hooks/chain.js';
import { loadHookChain, type LoadOptions } from './hooks/loader.js';
import { createLogger, type Logger } from './logging.js';
import { ProxyMetrics } from './metrics.js';
import { BanList, checkBanFileWritable } from './proxy/ban-list.js';
import { ProxyServer, type ProxySettings, type SlotGate } from './proxy/proxy-server.js';
import type { RunningOutbound } from './outbound.js';
import { openStore, type ProxyStore } from './store/index.js';

export interface RunningProxy {
  config: Config;
  proxy: ProxyServer;
  store: ProxyStore;
  metrics: ProxyMetrics;
  log: Logger;
  metricsServer: http.Server | null;
  adminServer: http.Server | null;
  /** the SOCKS5 front for our own node's outbound connections, when `outbound:` is configured */
  outbound: RunningOutbound | null;
  /**
   * Re-read the config (from `configFile`, or the given Config) and load a new hook chain;
   * new messages use it, no connection drops. On any error the old chain keeps running.
   */
  reload(next?: Config): Promise<string>;
  close(): Promise<void>;
}

export function proxySettings(c: Config): ProxySettings {
  return {
    network: c.network,
    checksum: c.checksum,
    v2: c.v2,
    xUnknown: c.xUnknown,
    listen: c.listen,
    backend: c.backend,
    ...c.limits,
    banThreshold: c.bans.threshold,
    banDuration: c.bans.duration,
    backendDisconnects: c.bans.backendDisconnects,
    proxyProtocolTrusted: c.proxyProtocol?.trusted ?? [],
  };
}

/** Settings read only at start (listeners, files, connections, the logger), so a reload cannot apply them. */
const RESTART_ONLY: Record<string, (c: Config) => unknown> = {
  listen: (c) => c.listen,
  backend: (c) => c.backend,
  network: (c) => c.network.name,
  metrics: (c) => c.metrics,
  admin: (c) => c.admin,
  'bans.file': (c) => c.bans.file,
  'log.level': (c) => c.log.level,
  store: (c) => c.store,
  outbound: (c) => c.outbound,
  workers: (c) => c.workers,
};

/** The restart-only settings that differ between the running config and a reloaded one. */
function restartOnlyChanges(running: Config, next: Config): string[] {
  return Object.entries(RESTART_ONLY)
    .filter(([, get]) => JSON.stringify(get(running)) !== JSON.stringify(get(next)))
    .map(([name]) => name);
}

/** How a config's hook chain loads (`run`, reload and `check` alike). */
export function chainLoadOptions(c: Config): Pick<LoadOptions, 'baseDir' | 'settings' | 'loadTimeoutMs'> {
  return { baseDir: c.baseDir, settings: { network: c.network, maxMessageSize: c.limits.maxMessageSize, timeoutMs: c.limits.hookTimeout }, loadTimeoutMs: c.limits.hookLoadTimeout };
}

export interface StartOptions {
  log?: Logger;
  defaultMetrics?: boolean;
  /** where reload() reads the config from */
  configFile?: string;
  /** the shared store to use instead of the one the config names (workers: the primary's over IPC) */
  store?: ProxyStore;
  /** per-address slots counted over several processes (workers) */
  slotGate?: SlotGate;
  /** connect to the backend once at start (and again while it is down) so /ready does not wait for a peer; default true */
  probeBackend?: boolean;
}

/** Start everything a config describes: bans, hook chain, proxy listeners, metrics and admin HTTP. */
export async function startProxy(config: Config, options: StartOptions = {}): Promise<RunningProxy> {
  const log = options.log ?? createLogger(config.log.level);
  const metrics = new ProxyMetrics({ defaultMetrics: options.defaultMetrics ?? true });
  if (config.bans.file) {
    // refuse to start rather than find out at the first ban (EROFS under ProtectSystem=strict)
    const problem = await checkBanFileWritable(config.bans.file);
    if (problem) throw new BanFileError(problem);
  }
  const bans = new BanList(config.bans.file, {
    log: log.child({ component: 'bans' }),
    onWriteFailure: () => metrics.banWriteFailed(),
    maxAutomatic: config.bans.maxAutomatic,
    onEvict: () => metrics.banEvicted(),
  });
  // a start-up problem of its own, named in one line as `check` names it
  await bans.load().catch((err: Error) => Promise.reject(new BanFileError(err.message)));
  const store = options.store ?? (await openStore(config.store, log.child({ component: 'store' })));
  const proxy = new ProxyServer({ settings: proxySettings(config), bans, log, observer: metrics, banSync: store, slotGate: options.slotGate });
  store.attachBans(proxy);
  metrics.watch(proxy);
  const loadChain = (c: Config): Promise<HookChain> =>
    loadHookChain(c.hooks, {
      ...chainLoadOptions(c),
      host: proxy,
      logger: (hook) => hookLogger(log.child({ hook })),
      metrics: () => metrics.hookMetrics(),
      observer: metrics,
      store: (hook) => store.hookStore(hook),
    });
  try {
    proxy.chain = await loadChain(config);
  } catch (err) {
    await store.close(); // its connections would keep the process alive
    throw err;
  }
  if (config.hooks.length) log.info({ hooks: proxy.chain.hooks.map((h) => h.name) }, 'hook chain loaded');

  let current = config;
  /** the last reload asked for: reloads run one after another, never joined (a later one may bring a newer config) */
  let reloads: Promise<unknown> = Promise.resolve();
  const reload = (next?: Config): Promise<string> => {
    const reloading = reloads.then(async () => {
      try {
        const c = next ?? (options.configFile ? loadConfig(options.configFile) : current);
        const waiting = restartOnlyChanges(current, c);
        if (waiting.length > 0) log.warn({ settings: waiting }, `${waiting.join(', ')} changed: they apply only after a restart`);
        const chain = await loadChain(c);
        const old = proxy.chain;
        proxy.chain = chain;
        proxy.updateSettings({ ...proxySettings(c), listen: current.listen, backend: current.backend, network: current.network });
        bans.maxAutomatic = c.bans.maxAutomatic;
        current = c;
        await old.close();
        const what = `hook chain: ${chain.hooks.map((h) => h.name).join(', ') || '(empty)'}`;
        log.info({ hooks: chain.hooks.map((h) => h.name) }, 'config reloaded');
        metrics.configReloaded(true);
        return what;
      } catch (err) {
        log.error({ err: (err as Error).message }, 'reload refused; the running config and hook chain stay');
        metrics.configReloaded(false);
        throw err;
      }
    });
    reloads = reloading.catch(() => {});
    return reloading;
  };

  const servers: http.Server[] = [];
  try {
    await proxy.listen();
    if (options.probeBackend ?? true) proxy.probeBackend();
    const metricsServer = config.metrics ? await metrics.serve(config.metrics.listen.host, config.metrics.listen.port) : null;
    if (metricsServer) servers.push(metricsServer);
    if (config.metrics) log.info({ listen: `${config.metrics.listen.host}:${config.metrics.listen.port}` }, 'metrics on /metrics');
    const adminServer = config.admin
      ? await serveAdmin(
          config.admin.token,
          { proxy, log: log.child({ component: 'admin' }), reload: () => reload(), hooks: () => proxy.chain.hooks.map((h) => ({ name: h.name, module: h.source, xCommands: Object.keys(h.module.commands ?? {}), admin: Object.keys(h.module.admin ?? {}) })) },
          config.admin.listen.host,
          config.admin.listen.port,
        )
      : null;
    if (adminServer) servers.push(adminServer);
    if (config.admin) log.info({ listen: `${config.admin.listen.host}:${config.admin.listen.port}` }, 'admin API');
    const exposed = adminExposure(config);
    if (exposed) log.warn({ listen: `${config.admin!.listen.host}:${config.admin!.listen.port}` }, `WARNING: ${exposed}`);
    for (const w of socksExposure(config)) log.warn(`WARNING: ${w}`);
    // our own node's outbound connections (bitcoind -proxy=socks.listen): same settings, chain and metrics
    // loaded only when configured: the client side (BOLT11 decoding, payers) costs memory a seller does not need
    const outbound = config.outbound
      ? await (await import('./outbound.js')).startOutbound(config.outbound, {
          session: () => proxy.settings,
          chain: () => proxy.chain,
          log: log.child({ component: 'outbound' }),
          observer: metrics,
          hookObserver: metrics,
          logger: (hook) => hookLogger(log.child({ hook })),
          metrics: () => metrics.hookMetrics(),
          baseDir: config.baseDir,
          attach: (sessions) => proxy.attachSessions(sessions),
        })
      : null;
    return {
      config,
      proxy,
      store,
      metrics,
      log,
      metricsServer,
      adminServer,
      outbound,
      reload,
      async close() {
        for (const s of servers) s.closeAllConnections?.();
        await Promise.all([proxy.close(), outbound?.close(), ...servers.map((s) => new Promise<void>((r) => s.close(() => r())))]);
        bans.close();
        await proxy.chain.close();
        await store.close();
      },
    };
  } catch (err) {
    await proxy.close();
    bans.close();
    await proxy.chain.close();
    await store.close();
    for (const s of servers) s.close();
    throw err;
  }
}

/** The ban file cannot be written: the one line says which file and why. */
export class BanFileError extends Error {
  override readonly name = 'BanFileError';
}

function hookLogger(l: Logger): HookLogger {
  return {
    debug: (msg, fields) => l.debug(fields ?? {}, msg),
    info: (msg, fields) => l.info(fields ?? {}, msg),
    warn: (msg, fields) => l.warn(fields ?? {}, msg),
    error: (msg, fields) => l.error(fields ?? {}, msg),
  };
}
