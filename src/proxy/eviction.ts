import { createHmac, randomBytes } from 'node:crypto';
import { parseAddress } from './address.js';
import { activityOf } from './peer-activity.js';
import type { PeerInfo } from './peer-info.js';

/**
 * Inbound eviction when every slot is taken, after bitcoind's (net.cpp, SelectNodeToEvict in
 * 0.21; node/eviction.cpp since 24): protect a few peers by each quality an attacker cannot fake
 * cheaply, then evict the youngest peer of the network group holding the most connections. Here
 * a peer still in its handshake after a grace period, then an idle one, is the first candidate:
 * slots held by peers that never finish (slowloris) are the cheapest to take back. The grace
 * keeps a newcomer from being the only "handshaking" peer, and so the one evicted, when the
 * peer it displaced reconnects at once.
 */

/** A handshake still running after this long marks a first candidate (a real one takes a few round trips). */
export const HANDSHAKE_GRACE_MS = 5000;

/** No byte from the peer for this long makes it idle: longer than bitcoind's 2-minute ping interval. */
export const IDLE_AFTER_MS = 150_000;

interface Seen {
  bytesIn: number;
  changedAt: number;
}

interface Candidate {
  info: PeerInfo;
  group: string;
  keyed: bigint;
}

export class Eviction {
  /** per-process secret, so an attacker cannot tell which netgroups are protected (Core's nKeyedNetGroup) */
  readonly #key = randomBytes(32);
  readonly #keyed = new WeakMap<PeerInfo, Candidate>();
  readonly #seen = new WeakMap<PeerInfo, Seen>();

  /** Note which peers sent bytes since the last sample (called periodically; no per-frame cost). */
  sample(peers: Iterable<PeerInfo>, now = Date.now()): void {
    for (const p of peers) {
      const s = this.#seen.get(p);
      if (!s) this.#seen.set(p, { bytesIn: p.bytesIn, changedAt: now });
      else if (s.bytesIn !== p.bytesIn) {
        s.bytesIn = p.bytesIn;
        s.changedAt = now;
      }
    }
  }

  idle(p: PeerInfo, now = Date.now()): boolean {
    const s = this.#seen.get(p);
    return s !== undefined && s.bytesIn === p.bytesIn && now - s.changedAt >= IDLE_AFTER_MS;
  }

  /** The peer to evict to make room for a new one, or null when every peer is protected. Priority (paid) peers never are. */
  select(peers: readonly PeerInfo[], now = Date.now()): PeerInfo | null {
    this.sample(peers, now);
    const all = peers.filter((p) => !p.priority).map((p) => this.#candidate(p));
    const handshaking = all.filter((c) => !c.info.handshakeComplete && now - c.info.connectedAt >= HANDSHAKE_GRACE_MS);
    if (handshaking.length > 0) return youngestOfLargestGroup(handshaking);
    const idle = all.filter((c) => this.idle(c.info, now));
    if (idle.length > 0) return youngestOfLargestGroup(idle);

    let rest = all;
    // the order and counts of SelectNodeToEvict
    rest = protect(rest, (a, b) => cmp(a.keyed, b.keyed), 4);
    rest = protect(rest, (a, b) => activityOf(b.info).minPingMs - activityOf(a.info).minPingMs, 8);
    rest = protect(rest, (a, b) => activityOf(a.info).lastTxAt - activityOf(b.info).lastTxAt || b.info.connectedAt - a.info.connectedAt, 4);
    rest = protect(rest, (a, b) => activityOf(a.info).lastBlockAt - activityOf(b.info).lastBlockAt || b.info.connectedAt - a.info.connectedAt, 4);
    rest = protect(rest, (a, b) => b.info.connectedAt - a.info.connectedAt, Math.floor(rest.length / 2));
    return rest.length > 0 ? youngestOfLargestGroup(rest) : null;
  }

  #candidate(info: PeerInfo): Candidate {
    let c = this.#keyed.get(info);
    if (!c) {
      const group = netGroup(info.address);
      c = { info, group, keyed: createHmac('sha256', this.#key).update(group).digest().readBigUInt64BE(0) };
      this.#keyed.set(info, c);
    }
    return c;
  }
}

/** Bitcoin Core's netgroup without an asmap: /16 for IPv4, /32 for IPv6. */
export function netGroup(address: string): string {
  const a = parseAddress(address);
  if (!a) return address;
  if (a.kind() === 'ipv4') {
    const b = a.toByteArray();
    return `${b[0]}.${b[1]}.0.0/16`;
  }
  const parts = a.toByteArray();
  return `${parts.slice(0, 4).map((x) => x.toString(16).padStart(2, '0')).join('')}::/32`;
}

/** Core's EraseLastKElements: sort ascending by `better` and drop the last k (the best). */
function protect(list: Candidate[], better: (a: Candidate, b: Candidate) => number, k: number): Candidate[] {
  if (k <= 0) return list;
  const sorted = [...list].sort(better);
  return sorted.slice(0, Math.max(0, sorted.length - k));
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The youngest peer of the netgroup with the most candidates (ties: the group whose youngest is youngest). */
function youngestOfLargestGroup(list: Candidate[]): PeerInfo {
  const groups = new Map<string, { n: number; youngest: Candidate }>();
  for (const c of list) {
    const g = groups.get(c.group);
    if (!g) groups.set(c.group, { n: 1, youngest: c });
    else {
      g.n++;
      if (c.info.connectedAt >= g.youngest.info.connectedAt) g.youngest = c;
    }
  }
  let best: { n: number; youngest: Candidate } | null = null;
  for (const g of groups.values()) {
    if (!best || g.n > best.n || (g.n === best.n && g.youngest.info.connectedAt > best.youngest.info.connectedAt)) best = g;
  }
  return best!.youngest.info;
}
