import { PayloadError } from '../errors.js';
import type { PayloadReader } from '../reader.js';
import type { PayloadWriter } from '../writer.js';
import { checkCount, checkLength, readCompactSize64, readCount, writeCompactSize64 } from './common.js';
import { defineCodec } from './registry.js';

/** bitcoind's MAX_ADDR_TO_SEND: the most entries an addr or addrv2 message may carry. */
export const MAX_ADDR_TO_SEND = 1000;
/** bitcoind's CNetAddr::MAX_ADDRV2_SIZE: the longest address BIP155 allows. */
export const MAX_ADDRV2_SIZE = 512;

/** One entry of an addr message (CAddress in the V1 network format). */
export interface AddrEntry {
  time: number;
  services: bigint;
  /** 16 bytes: IPv6, or IPv4-mapped ::ffff:a.b.c.d */
  ip: Buffer;
  port: number;
}

export type AddrMessage = AddrEntry[];

const ADDR_ENTRY_SIZE = 4 + 8 + 16 + 2;

export const addr = defineCodec<AddrMessage>({
  command: 'addr',
  decode(r) {
    const n = readCount(r, 'addr', MAX_ADDR_TO_SEND, ADDR_ENTRY_SIZE);
    const out = new Array<AddrEntry>(n);
    for (let i = 0; i < n; i++) {
      out[i] = { time: r.u32(`addr[${i}].time`), services: r.u64(`addr[${i}].services`), ip: r.bytes(16, `addr[${i}].ip`), port: r.u16be(`addr[${i}].port`) };
    }
    return out;
  },
  encode(w, m) {
    w.compactSize(checkCount(m.length, MAX_ADDR_TO_SEND, 'addr', 'addr'));
    for (const a of m) w.u32(a.time).u64(a.services).bytes(checkLength(a.ip, 16, 'addr', 'ip')).u16be(a.port);
  },
});

/** BIP155 network ids. */
export const NetworkId = Object.freeze({ IPV4: 1, IPV6: 2, TORV2: 3, TORV3: 4, I2P: 5, CJDNS: 6 });

/**
 * Address length of each known BIP155 network id. bitcoind rejects a known id with another
 * length (a PayloadError INVALID here) and skips unknown ids, which we keep as raw bytes.
 */
export const BIP155_ADDR_SIZE: ReadonlyMap<number, number> = new Map([
  [NetworkId.IPV4, 4],
  [NetworkId.IPV6, 16],
  [NetworkId.TORV2, 10],
  [NetworkId.TORV3, 32],
  [NetworkId.I2P, 32],
  [NetworkId.CJDNS, 16],
]);

/** One entry of an addrv2 message (BIP155). */
export interface AddrV2Entry {
  time: number;
  /** a CompactSize on the wire, over the whole uint64 range */
  services: bigint;
  /** see NetworkId; unknown ids are kept */
  networkId: number;
  /** the address bytes, of the length the network id requires (any length up to 512 for unknown ids) */
  addr: Buffer;
  port: number;
}

export type AddrV2Message = AddrV2Entry[];

/** time + services + network id + address length + port */
const ADDRV2_MIN_ENTRY_SIZE = 4 + 1 + 1 + 1 + 2;

function bip155LengthError(command: string, networkId: number, len: number): string | undefined {
  const want = BIP155_ADDR_SIZE.get(networkId);
  if (want !== undefined && want !== len) return `BIP155 network ${networkId} address with length ${len} (should be ${want})`;
  if (len > MAX_ADDRV2_SIZE) throw new PayloadError('LIMIT', command, `address of ${len} bytes, above the limit of ${MAX_ADDRV2_SIZE}`);
  return undefined;
}

/** One addrv2 entry at the reader's position. */
export function readAddrV2Entry(r: PayloadReader, what: string): AddrV2Entry {
  const time = r.u32(`${what}.time`);
  const services = readCompactSize64(r, `${what}.services`);
  const networkId = r.u8(`${what}.networkId`);
  const a = r.varBytes(`${what}.addr`, MAX_ADDRV2_SIZE);
  const bad = bip155LengthError('addrv2', networkId, a.length);
  if (bad) r.fail('INVALID', `${what}: ${bad}`);
  return { time, services, networkId, addr: a, port: r.u16be(`${what}.port`) };
}

export function writeAddrV2Entry(w: PayloadWriter, a: AddrV2Entry): void {
  const bad = bip155LengthError('addrv2', a.networkId, a.addr.length);
  if (bad) throw new PayloadError('INVALID', 'addrv2', bad);
  w.u32(a.time);
  writeCompactSize64(w, a.services);
  w.u8(a.networkId).varBytes(a.addr).u16be(a.port);
}

export const addrv2 = defineCodec<AddrV2Message>({
  command: 'addrv2',
  decode(r) {
    const n = readCount(r, 'addrv2', MAX_ADDR_TO_SEND, ADDRV2_MIN_ENTRY_SIZE);
    const out = new Array<AddrV2Entry>(n);
    for (let i = 0; i < n; i++) out[i] = readAddrV2Entry(r, `addrv2[${i}]`);
    return out;
  },
  encode(w, m) {
    w.compactSize(checkCount(m.length, MAX_ADDR_TO_SEND, 'addrv2', 'addrv2'));
    for (const a of m) writeAddrV2Entry(w, a);
  },
});
