/**
 * `bitcoin-hook-proxy/hooks`: everything a hook module author needs. The codec is exported
 * too so hooks can decode and build payloads without a second dependency.
 */
export * from './api.js';
export { HookFault } from './result.js';
export { HookLoadError } from './loader.js';
export * as codec from '../codec/index.js';
/** Durable file writes for hooks that keep state on disk (temp file, fsync, rename, fsync dir). */
export { writeAtomic, appendAtomic, removeStaleTemporaries, checkWritable } from './atomic-file.js';
