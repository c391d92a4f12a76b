/** `run` and `check`: the proxy a config describes, started or only validated. */
import cluster from 'node:cluster';
import { BanFileError, chainLoadOptions, startProxy } from '../app.js';
import { adminExposure, ConfigError, loadConfig, socksExposure, type Config } from '../config.js';
import { formatHostPort, type HostPort } from '../config-values.js';
import { HookLoadError, loadHookChain, silentHookServices } from '../hooks/loader.js';
import { trapReload, trapShutdown } from '../lifecycle.js';
import { createLogger, defaultLogFormat, LOG_FORMATS, type LogFormat } from '../logging.js';
import { ProxyMetrics } from '../metrics.js';
import { checkBanFileReadable, checkBanFileWritable } from '../proxy/ban-list.js';
import { type CommandSpec, type OptionSpec, type ParsedArgs } from './spec.js';

const CONFIG_OPTION: OptionSpec = { type: 'string', short: 'c', arg: 'FILE', file: true, required: true, help: 'the proxy config (YAML); deploy/proxy.example.yaml shows every setting' };
export const LOG_FORMAT_OPTION: OptionSpec = { type: 'string', arg: 'FORMAT', choices: LOG_FORMATS, help: 'JSON lines, or pretty ones for a person; default pretty when stdout is a terminal, else json' };

/** The log format asked for, else the default for stdout. */
export function logFormat(values: ParsedArgs['values']): LogFormat {
  return (values['log-format'] as LogFormat | undefined) ?? defaultLogFormat();
}

export const RUN: CommandSpec = {
  name: 'run',
  summary: 'run the proxy described by a config file',
  options: { config: CONFIG_OPTION, 'log-format': LOG_FORMAT_OPTION },
  details: [
    'Signals: SIGTERM/SIGINT stop gracefully (sessions closed, bans saved, exit 0); SIGHUP reloads',
    'the config and the hook chain without dropping a connection (a bad config is refused and the',
    'old one keeps running). A problem at start is one line naming the key and line, the hook',
    'module or the setting, and exit 1.',
  ].join('\n'),
  stalled: "a hook's promise that never settles?; the proxy is not running",
  run: (args) => runOrCheck('run', args),
};

export const CHECK: CommandSpec = {
  name: 'check',
  summary: 'validate a config file (and load its hooks) without starting anything',
  options: { config: CONFIG_OPTION },
  details: 'Exit 0 when valid; else 1 with one line per problem, as `run` would print it.',
  stalled: "a hook's promise that never settles?; the config was not checked to the end",
  run: (args) => runOrCheck('check', args),
};

/** The Config once loaded, so a failure to listen can name its setting. */
let loaded: Config | undefined;

async function runOrCheck(command: 'run' | 'check', { values }: ParsedArgs): Promise<number> {
  const file = values.config as string;
  const config = (loaded = loadConfig(file));
  if (command === 'check') {
    const exposed = adminExposure(config);
    if (exposed) console.error(`warning: ${exposed}`);
    for (const w of socksExposure(config)) console.error(`warning: ${w}`);
    if (config.bans.file) {
      // as run refuses it: a directory it cannot write, or a file it would not load
      const problem = (await checkBanFileWritable(config.bans.file)) ?? (await checkBanFileReadable(config.bans.file));
      if (problem) throw new BanFileError(problem);
    }
    await checkHooks(config);
    // as run builds it: the payer reads its macaroon, rune, key or password file at start
    if (config.outbound?.payer) (await import('../outbound.js')).payerFromConfig(config.outbound.payer, config.baseDir);
    console.log(`${file}: valid (network ${config.network.name}, ${config.listen.length} listener(s), backend ${formatHostPort(config.backend)}, ${config.hooks.length} hook(s))`);
    return 0;
  }
  // workers: N runs N processes under node:cluster (src/workers.ts); this process is then their primary
  // loaded only then: the primary's AggregatorRegistry and the IPC store are no use to one process
  if (cluster.isWorker) return await (await import('../workers.js')).runWorker(file);
  if (config.workers > 1) return await (await import('../workers.js')).runPrimary(config, file);
  // before the start: the listener is up (and says so) before startProxy returns
  const shutdown = trapShutdown();
  const reloads = trapReload();
  const running = await startProxy(config, { configFile: file, log: createLogger(config.log.level, undefined, logFormat(values)) });
  reloads.onReload(() => {
    running.log.info('SIGHUP: reloading config');
    running.reload().catch(() => {}); // logged by reload; the old chain keeps running
  });
  return await shutdown.until(running);
}

/** `check` also loads the hook chain (API versions, option schemas, init) and closes it again. */
async function checkHooks(config: Config): Promise<void> {
  // the real registry, so a hook metric named like one of the proxy's fails here as it does in `run`
  const registry = new ProxyMetrics({ defaultMetrics: false });
  const chain = await loadHookChain(config.hooks, {
    ...chainLoadOptions(config),
    host: { peers: () => [], send: () => false, disconnect() {}, misbehave() {}, setPriority: () => false },
    ...silentHookServices,
    metrics: () => registry.hookMetrics(),
  });
  // a close() that throws or never settles is a broken module too (run logs it and goes on)
  const [failed] = await chain.close();
  if (failed) throw new HookLoadError(failed.hook.source, failed.problem);
}

/** A start-up problem as one line naming the key, line, module or setting; null when it is none of those. */
export function proxyFailure(e: Error): string | null {
  if (e instanceof ConfigError || e instanceof HookLoadError || e instanceof BanFileError) return e.message;
  const sys = e as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
  if (loaded && (sys.syscall === 'listen' || sys.syscall === 'bind' || sys.code === 'ENOTFOUND')) {
    return `${listenSetting(sys, loaded)}: cannot listen: ${LISTEN_ERRORS[sys.code ?? ''] ?? e.message}${sys.code ? ` (${sys.code})` : ''}`;
  }
  return null;
}

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use (another process listens there)',
  EACCES: 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)',
  EADDRNOTAVAIL: 'this machine has no such address',
  ENOTFOUND: 'host name not found',
};

/** The setting behind a failed listen, found by the port (and the host when ports repeat). */
function listenSetting(err: { address?: string; port?: number; hostname?: string }, c: Config): string {
  const all: [string, HostPort][] = [...c.listen.map((hp): [string, HostPort] => ['listen', hp])];
  if (c.metrics) all.push(['metrics.listen', c.metrics.listen]);
  if (c.admin) all.push(['admin.listen', c.admin.listen]);
  const hits = err.hostname !== undefined ? all.filter(([, hp]) => hp.host === err.hostname) : all.filter(([, hp]) => hp.port === err.port);
  const hit = hits.length > 1 ? (hits.find(([, hp]) => hp.host === err.address) ?? hits[0]) : hits[0];
  return hit ? `${hit[0]} ${formatHostPort(hit[1])}` : `${err.hostname ?? err.address}:${err.port}`;
}
