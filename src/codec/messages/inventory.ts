import type { PayloadReader } from '../reader.js';
import type { PayloadWriter } from '../writer.js';
import { checkCount, type Hash, readCount, readHash, writeHash } from './common.js';
import { defineCodec, type MessageCodec } from './registry.js';

/** bitcoind's MAX_INV_SZ: the most entries an inv, getdata or notfound may carry. */
export const MAX_INV_SZ = 50_000;

/** Inventory types (protocol.h GetDataMsg). */
export const InvType = Object.freeze({
  ERROR: 0,
  TX: 1,
  BLOCK: 2,
  FILTERED_BLOCK: 3,
  CMPCT_BLOCK: 4,
  WTX: 5,
  WITNESS_FLAG: 0x40000000,
  WITNESS_TX: 0x40000001,
  WITNESS_BLOCK: 0x40000002,
  FILTERED_WITNESS_BLOCK: 0x40000003,
});

export interface InvVector {
  /** uint32; see InvType. Unknown types are kept as they are. */
  type: number;
  /** 32 bytes, wire order */
  hash: Hash;
}

/** inv, getdata and notfound share one payload: a vector of inventory entries. */
export type InvMessage = InvVector[];

const INV_ENTRY_SIZE = 36;

export function readInvVectors(r: PayloadReader, what = 'inventory'): InvVector[] {
  const n = readCount(r, what, MAX_INV_SZ, INV_ENTRY_SIZE);
  const out = new Array<InvVector>(n);
  for (let i = 0; i < n; i++) out[i] = { type: r.u32(`${what}[${i}].type`), hash: readHash(r, `${what}[${i}].hash`) };
  return out;
}

export function writeInvVectors(w: PayloadWriter, items: readonly InvVector[], command: string): void {
  w.compactSize(checkCount(items.length, MAX_INV_SZ, command, 'inventory'));
  for (const item of items) {
    w.u32(item.type);
    writeHash(w, item.hash, command, 'inventory hash');
  }
}

function invCodec(command: string): MessageCodec<InvMessage> {
  return defineCodec<InvMessage>({
    command,
    decode: (r) => readInvVectors(r),
    encode: (w, m) => writeInvVectors(w, m, command),
  });
}

export const inv = invCodec('inv');
export const getdata = invCodec('getdata');
export const notfound = invCodec('notfound');
