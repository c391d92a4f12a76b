import type { PayloadReader } from '../reader.js';
import type { PayloadWriter } from '../writer.js';
import { readBoolByte, writeBoolByte } from './common.js';
import { defineCodec } from './registry.js';

/** bitcoind's MAX_SUBVERSION_LENGTH. */
export const MAX_SUBVERSION_LENGTH = 256;

/** A network address without time, as in the version message (CNetAddr::V1 + port). */
export interface VersionAddress {
  services: bigint;
  /** 16 bytes: IPv6, or IPv4-mapped ::ffff:a.b.c.d */
  ip: Buffer;
  port: number;
}

/**
 * The version message. Every field after addrRecv is optional on the wire (bitcoind reads
 * each only if bytes remain), so absent fields stay undefined and re-encode as absent.
 */
export interface VersionMessage {
  version: number;
  services: bigint;
  timestamp: bigint;
  addrRecv: VersionAddress;
  addrFrom?: VersionAddress;
  nonce?: bigint;
  userAgent?: string;
  startHeight?: number;
  relay?: boolean;
  /** the relay byte when it was neither 0 nor 1 (bitcoind takes any non-zero byte as true), kept for an exact round trip */
  relayByte?: number;
  /** bytes after the relay flag; bitcoind ignores them, we keep them for an exact round trip */
  extra?: Buffer;
}

export function readVersionAddress(r: PayloadReader, what: string): VersionAddress {
  return { services: r.u64(`${what}.services`), ip: r.bytes(16, `${what}.ip`), port: r.u16be(`${what}.port`) };
}

export function writeVersionAddress(w: PayloadWriter, a: VersionAddress): void {
  w.u64(a.services).bytes(a.ip).u16be(a.port);
}

export const version = defineCodec<VersionMessage>({
  command: 'version',
  decode(r) {
    const m: VersionMessage = {
      version: r.i32('version'),
      services: r.u64('services'),
      timestamp: r.i64('timestamp'),
      addrRecv: readVersionAddress(r, 'addrRecv'),
    };
    if (r.remaining === 0) return m;
    m.addrFrom = readVersionAddress(r, 'addrFrom');
    m.nonce = r.u64('nonce');
    if (r.remaining === 0) return m;
    m.userAgent = r.varString('userAgent', MAX_SUBVERSION_LENGTH);
    if (r.remaining === 0) return m;
    m.startHeight = r.i32('startHeight');
    if (r.remaining === 0) return m;
    const relay = readBoolByte(r, 'relay');
    m.relay = relay.value;
    if (relay.odd !== undefined) m.relayByte = relay.odd;
    if (r.remaining > 0) m.extra = r.bytes(r.remaining, 'extra');
    return m;
  },
  encode(w, m) {
    w.i32(m.version).u64(m.services).i64(m.timestamp);
    writeVersionAddress(w, m.addrRecv);
    if (m.addrFrom === undefined) return;
    writeVersionAddress(w, m.addrFrom);
    w.u64(m.nonce ?? 0n);
    if (m.userAgent === undefined) return;
    w.varString(m.userAgent);
    if (m.startHeight === undefined) return;
    w.i32(m.startHeight);
    if (m.relay === undefined) return;
    writeBoolByte(w, m.relay, m.relayByte);
    if (m.extra) w.bytes(m.extra);
  },
});
