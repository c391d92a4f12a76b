#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startProxy } from './app.js';
import { waitForShutdown } from './lifecycle.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { HookLoadError, loadHookChain, silentHookServices } from './hooks/loader.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const HELP = `bitcoin-hook-proxy ${pkg.version}
A transparent Bitcoin P2P proxy in front of an unmodified bitcoind, with hook modules.

Usage:
  bitcoin-hook-proxy run   --config FILE   run the proxy described by FILE (YAML)
  bitcoin-hook-proxy check --config FILE   validate FILE and exit (0 when valid)
  bitcoin-hook-proxy demo  [--port N]      run a regtest node in-process with the proxy in front of it
  bitcoin-hook-proxy --help | --version

Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the config.
See deploy/proxy.example.yaml for every setting.`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
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
  let config;
  try {
    config = loadConfig(values.config);
    if (command === 'check') await checkHooks(config);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof HookLoadError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  if (command === 'check') {
    console.log(`${values.config}: valid (network ${config.network.name}, ${config.listen.length} listener(s), backend ${config.backend.host}:${config.backend.port}, ${config.hooks.length} hook(s))`);
    return 0;
  }
  const running = await startProxy(config, { configFile: values.config });
  process.on('SIGHUP', () => {
    running.log.info('SIGHUP: reloading config');
    running.reload().catch(() => {}); // logged by reload; the old chain keeps running
  });
  return waitForShutdown(running);
}

/** `check` also loads the hook chain (API versions, option schemas, init) and closes it again. */
async function checkHooks(config: Config): Promise<void> {
  const chain = await loadHookChain(config.hooks, {
    baseDir: config.baseDir,
    settings: { network: config.network, maxMessageSize: config.limits.maxMessageSize, timeoutMs: config.limits.hookTimeout },
    host: { peers: () => [], send: () => false, disconnect() {}, misbehave() {}, setPriority: () => false },
    ...silentHookServices,
  });
  await chain.close();
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // let pino flush, then leave even if a stray handle lingers
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: Error) => {
    console.error(`fatal: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
