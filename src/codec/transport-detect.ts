import { COMMAND_SIZE } from './header.js';
import type { Network } from './networks.js';

/** Bytes a v1 connection must open with: magic + "version" NUL-padded to 12 (16 bytes). */
export const V1_PREFIX_SIZE = 4 + COMMAND_SIZE;

export function v1Prefix(network: Network): Buffer {
  const prefix = Buffer.alloc(V1_PREFIX_SIZE);
  network.magic.copy(prefix, 0);
  prefix.write('version', 4, 'latin1');
  return prefix;
}

export type TransportGuess = 'v1' | 'v2' | 'undecided';

/**
 * Classify the first bytes of an inbound stream the way bitcoind's V2Transport does: anything
 * that is not a prefix of the v1 version header is taken for a BIP324 v2 opening (or garbage).
 * `seen` holds the first bytes received so far (at most 16 are looked at). Only a node that
 * offers v2 looks at all: without v2, bitcoind reads every stream as v1 (a stream opening with
 * `ping` is v1; a wrong magic fails its header check).
 */
export function guessTransport(seen: Uint8Array, prefix: Uint8Array): TransportGuess {
  const n = Math.min(seen.length, prefix.length);
  for (let i = 0; i < n; i++) if (seen[i] !== prefix[i]) return 'v2';
  return n === prefix.length ? 'v1' : 'undecided';
}
