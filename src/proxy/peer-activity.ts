import type { Frame } from '../codec/index.js';
import type { PeerInfo } from './peer-info.js';

/**
 * What inbound eviction weighs besides age (bitcoind's nMinPingUsecTime, nLastTXTime,
 * nLastBlockTime), learnt from the frames a session relays. The proxy cannot tell a novel
 * transaction from a repeated one as bitcoind does; "sent us a tx/block" is the approximation.
 */
export interface PeerActivity {
  /** lowest round trip of bitcoind's ping to the peer's matching pong, ms; MAX_VALUE until one is seen (finite, so comparators never see NaN) */
  minPingMs: number;
  /** ms since the epoch of the last tx / block (block, cmpctblock, blocktxn) the peer sent; 0: never */
  lastTxAt: number;
  lastBlockAt: number;
  /** the ping in flight: its nonce as two 32-bit halves (no bigint per ping), and when it went out */
  pingLo: number;
  pingHi: number;
  pingAt: number;
}

const activities = new WeakMap<PeerInfo, PeerActivity>();

export function activityOf(info: PeerInfo): PeerActivity {
  let a = activities.get(info);
  if (!a) {
    a = { minPingMs: Number.MAX_VALUE, lastTxAt: 0, lastBlockAt: 0, pingLo: 0, pingHi: 0, pingAt: 0 };
    activities.set(info, a);
  }
  return a;
}

const NONCE_AT = 24;

/** Any frame the peer sent (peer → bitcoind), whole or cut through: only its command is read. */
export function noteInboundCommand(info: PeerInfo, command: string): void {
  switch (command) {
    case 'tx':
      activityOf(info).lastTxAt = Date.now();
      return;
    case 'block':
    case 'cmpctblock':
    case 'blocktxn':
      activityOf(info).lastBlockAt = Date.now();
  }
}

/** The peer's pong, whole (the session's stage keeps pongs whole for this): the round trip of bitcoind's ping. */
export function notePong(info: PeerInfo, frame: Frame): void {
  const a = activityOf(info);
  if (a.pingAt === 0 || frame.raw.length < NONCE_AT + 8) return;
  if (frame.raw.readUInt32LE(NONCE_AT) !== a.pingLo || frame.raw.readUInt32LE(NONCE_AT + 4) !== a.pingHi) return;
  a.minPingMs = Math.min(a.minPingMs, performance.now() - a.pingAt);
  a.pingAt = 0;
}

/** bitcoind's ping to the peer, whole: remember its nonce and when it went out. */
export function notePing(info: PeerInfo, frame: Frame): void {
  if (frame.raw.length < NONCE_AT + 8) return;
  const a = activityOf(info);
  a.pingLo = frame.raw.readUInt32LE(NONCE_AT);
  a.pingHi = frame.raw.readUInt32LE(NONCE_AT + 4);
  a.pingAt = performance.now();
}
