import { checkCount, type Hash, readCount, readHash, writeHash } from './common.js';
import { defineCodec, type MessageCodec } from './registry.js';

/** bitcoind's MAX_LOCATOR_SZ: the most hashes a block locator may hold. */
export const MAX_LOCATOR_SZ = 101;

/** getheaders and getblocks: a block locator and the hash to stop at (all zero: as many as allowed). */
export interface LocatorMessage {
  version: number;
  locator: Hash[];
  hashStop: Hash;
}

function locatorCodec(command: string): MessageCodec<LocatorMessage> {
  return defineCodec<LocatorMessage>({
    command,
    decode(r) {
      const version = r.u32('version');
      const n = readCount(r, 'locator', MAX_LOCATOR_SZ, 32);
      const locator = new Array<Hash>(n);
      for (let i = 0; i < n; i++) locator[i] = readHash(r, `locator[${i}]`);
      return { version, locator, hashStop: readHash(r, 'hashStop') };
    },
    encode(w, m) {
      w.u32(m.version).compactSize(checkCount(m.locator.length, MAX_LOCATOR_SZ, command, 'locator'));
      for (const h of m.locator) writeHash(w, h, command, 'locator hash');
      writeHash(w, m.hashStop, command, 'hashStop');
    },
  });
}

export const getheaders = locatorCodec('getheaders');
export const getblocks = locatorCodec('getblocks');
