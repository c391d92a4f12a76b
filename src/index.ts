/**
 * `bitcoin-hook-proxy`: embed the proxy in a program (start it from a Config) and write hooks.
 * The hook API is also at `bitcoin-hook-proxy/hooks`, the wire codec at `bitcoin-hook-proxy/codec`.
 */
export * from './hooks/index.js';
export { startProxy, type RunningProxy, type StartOptions } from './app.js';
export { loadConfig, parseConfig, ConfigError, type Config, type HookEntry } from './config.js';
