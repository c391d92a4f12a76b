import type * as http from 'node:http';
import type { Config } from './config.js';
import { serveAdmin } from './admin.js';
import { createLogger, type Logger } from './logging.js';
import { ProxyMetrics } from './metrics.js';
import { BanList } from './proxy/ban-list.js';
import { ProxyServer, type ProxySettings } from './proxy/proxy-server.js';

export interface RunningProxy {
  config: Config;
  proxy: ProxyServer;
  metrics: ProxyMetrics;
  log: Logger;
  metricsServer: http.Server | null;
  adminServer: http.Server | null;
  close(): Promise<void>;
}

export function proxySettings(c: Config): ProxySettings {
  return {
    network: c.network,
    checksum: c.checksum,
    v2: c.v2,
    listen: c.listen,
    backend: c.backend,
    ...c.limits,
    banThreshold: c.bans.threshold,
    banDuration: c.bans.duration,
    backendDisconnects: c.bans.backendDisconnects,
  };
}

/** Start everything a config describes: bans, the proxy listeners, metrics and admin HTTP. */
export async function startProxy(config: Config, options: { log?: Logger; defaultMetrics?: boolean } = {}): Promise<RunningProxy> {
  const log = options.log ?? createLogger(config.log.level);
  const bans = new BanList(config.bans.file);
  await bans.load();
  const metrics = new ProxyMetrics({ defaultMetrics: options.defaultMetrics ?? true });
  const proxy = new ProxyServer({ settings: proxySettings(config), bans, log, observer: metrics });
  const servers: http.Server[] = [];
  try {
    await proxy.listen();
    const metricsServer = config.metrics ? await metrics.serve(config.metrics.listen.host, config.metrics.listen.port) : null;
    if (metricsServer) servers.push(metricsServer);
    if (config.metrics) log.info({ listen: `${config.metrics.listen.host}:${config.metrics.listen.port}` }, 'metrics on /metrics');
    const adminServer = config.admin ? await serveAdmin(config.admin.token, { proxy }, config.admin.listen.host, config.admin.listen.port) : null;
    if (adminServer) servers.push(adminServer);
    if (config.admin) log.info({ listen: `${config.admin.listen.host}:${config.admin.listen.port}` }, 'admin API');
    return {
      config,
      proxy,
      metrics,
      log,
      metricsServer,
      adminServer,
      async close() {
        for (const s of servers) s.closeAllConnections?.();
        await Promise.all([proxy.close(), ...servers.map((s) => new Promise<void>((r) => s.close(() => r())))]);
      },
    };
  } catch (err) {
    await proxy.close();
    for (const s of servers) s.close();
    throw err;
  }
}
