/**
 * `bitcoin-hook-proxy/hooks`: everything a hook module author needs. The codec is exported
 * too so hooks can decode and build payloads without a second dependency.
 */
export * from './api.js';
export { HookFault } from './result.js';
export { HookLoadError } from './loader.js';
/** what ctx.store operations reject with while a shared store (Redis) is unreachable */
export { StoreUnavailableError } from './memory-store.js';
/** the proxy's one parser for sizes (5MB SI, 512KiB IEC) and durations (500ms ... 2w): hooks parse their options with it */
export { parseSize, parseDuration, SIZE_HINT, DURATION_HINT } from './units.js';
export * as codec from '../codec/index.js';
/** Durable file writes for hooks that keep state on disk (temp file, fsync, rename, fsync dir). */
export { writeAtomic, appendAtomic, appendDurable, readIfExists, removeStaleTemporaries, checkWritable } from './atomic-file.js';
