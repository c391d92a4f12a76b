#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BanFileError, chainLoadOptions, startProxy } from './app.js';
import { waitForShutdown } from './lifecycle.js';
import { adminExposure, ConfigError, loadConfig, type Config } from './config.js';
import { formatHostPort, type HostPort } from './config-values.js';
import { HookLoadError, loadHookChain, silentHookServices } from './hooks/loader.js';
import { ProxyMetrics } from './metrics.js';
import { checkBanFileWritable } from './proxy/ban-list.js';
import { isWorker, runPrimary, runWorker } from './workers.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const HELP = `bitcoin-hook-proxy ${pkg.version}
A transparent Bitcoin P2P proxy in front of an unmodified bitcoind, with hook modules.

Usage:
  bitcoin-hook-proxy run   --config FILE   run the proxy described by FILE (YAML)
  bitcoin-hook-proxy check --config FILE   validate FILE and exit (0 when valid)
  bitcoin-hook-proxy demo  [--port N]      run a regtest node in-process with the proxy in front of it
  bitcoin-hook-proxy --help | --version

Options: --debug prints the stack trace of a fatal error.

Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the config.
See deploy/proxy.example.yaml for every setting.`;

/** Set once main() has an exit code; until then an empty event loop is a hang that node would report as success. */
let finished = false;
let debug = false;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        port: { type: 'string' },
        debug: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  debug = values.debug === true;
  if (values.version) {
    console.log(pkg.version);
    return 0;
  }
  const command = positionals[0];
  if (values.help || !command) {
    console.log(HELP);
    return command || values.help ? 0 : 2;
  }
  if (command === 'demo') {
    const { runDemo } = await import('./demo.js');
    return runDemo({ port: values.port ? Number(values.port) : undefined });
  }
  if (command !== 'run' && command !== 'check') {
    console.error(`unknown command "${command}"\n\n${HELP}`);
    return 2;
  }
  if (!values.config) {
    console.error(`${command} needs --config FILE`);
    return 2;
  }
  process.on('beforeExit', () => {
    if (finished) return;
    const what = command === 'run' ? 'the proxy is not running' : 'the config was not checked to the end';
    console.error(`${command}: node ran out of work before the command finished (a hook's promise that never settles?); ${what}`);
    process.exit(1);
  });
  let config: Config | undefined;
  try {
    config = loadConfig(values.config);
    const exposed = adminExposure(config);
    if (command === 'check') {
      if (exposed) console.error(`warning: ${exposed}`);
      if (config.bans.file) {
        const problem = await checkBanFileWritable(config.bans.file);
        if (problem) throw new BanFileError(problem);
      }
      await checkHooks(config);
      console.log(`${values.config}: valid (network ${config.network.name}, ${config.listen.length} listener(s), backend ${formatHostPort(config.backend)}, ${config.hooks.length} hook(s))`);
      return 0;
    }
    if (isWorker()) return await runWorker(values.config);
    if (config.workers > 1) return await runPrimary(config, values.config);
    const running = await startProxy(config, { configFile: values.config });
    process.on('SIGHUP', () => {
      running.log.info('SIGHUP: reloading config');
      running.reload().catch(() => {}); // logged by reload; the old chain keeps running
    });
    return await waitForShutdown(running);
  } catch (err) {
    console.error(fatalMessage(err, config));
    return 1;
  }
}

/** `check` also loads the hook chain (API versions, option schemas, init) and closes it again. */
async function checkHooks(config: Config): Promise<void> {
  // the real registry, so a hook metric named like one of the proxy's fails here as it does in `run`
  const registry = new ProxyMetrics({ defaultMetrics: false });
  const chain = await loadHookChain(config.hooks, {
    ...chainLoadOptions(config),
    host: { peers: () => [], send: () => false, disconnect() {}, misbehave() {} },
    ...silentHookServices,
    metrics: () => registry.hookMetrics(),
  });
  await chain.close();
}

/** One clear line per problem, naming the key, line, module or setting; the stack only with --debug. */
function fatalMessage(err: unknown, config: Config | undefined): string {
  const e = err instanceof Error ? err : new Error(String(err));
  const stack = debug && e.stack ? `\n${e.stack}` : '';
  if (e instanceof ConfigError || e instanceof HookLoadError || e instanceof BanFileError) return e.message + stack;
  const sys = e as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
  if (config && (sys.syscall === 'listen' || sys.syscall === 'bind' || sys.code === 'ENOTFOUND')) {
    return `${listenSetting(sys, config)}: cannot listen: ${LISTEN_ERRORS[sys.code ?? ''] ?? e.message}${sys.code ? ` (${sys.code})` : ''}${stack}`;
  }
  return `error: ${e.message}${stack || ' (--debug shows where)'}`;
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

main(process.argv.slice(2)).then(
  (code) => {
    finished = true;
    process.exitCode = code;
    // let pino flush, then leave even if a stray handle lingers
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    finished = true;
    console.error(fatalMessage(err, undefined));
    process.exit(1);
  },
);
