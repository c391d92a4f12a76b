/**
 * `bitcoin-hook-proxy`: the programmatic API. Read a config, start a proxy, and everything a
 * hook author needs (the hook API, its types, the size/duration parser and the codec as
 * `codec`). The CLI (`bitcoin-hook-proxy run`) is this plus signals and exit codes.
 *
 *   import { loadConfig, startProxy } from 'bitcoin-hook-proxy';
 *   const running = await startProxy(loadConfig('proxy.yaml'));
 *   ...
 *   await running.close();
 */
export { startProxy, type RunningProxy, type StartOptions } from './app.js';
export { adminExposure, ConfigError, loadConfig, MAX_CONFIG_BYTES, parseConfig, type Config, type HookEntry } from './config.js';
export { formatHostPort, parseHostPort, type HostPort } from './config-values.js';
export { createLogger, type Logger } from './logging.js';
// the public hook API, exactly as `bitcoin-hook-proxy/hooks` exports it (including `codec`)
export * from './hooks/index.js';
