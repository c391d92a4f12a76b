import type { Logger } from 'pino';
import { commandFieldStartsWith, decodeFrame, encodeFrame, encodePayload, type FeatureMessage, type Frame, type Network, type VersionMessage } from '../codec/index.js';
import { FEATURE_MIN_VERSION } from '../hooks/api.js';
import type { ChainTarget, HookChain } from '../hooks/chain.js';
import { addressTo16Bytes } from './address.js';
import type { PeerInfo } from './peer-info.js';
import type { V2Policy } from './transport/detect.js';
import type { LogLimiter } from './log-limiter.js';

/** BIP324 NODE_P2P_V2 service bit. */
export const NODE_P2P_V2 = 1n << 11n;

/** BIP 434 needs protocol 70017; 70016 peers already ignore unknown messages before verack. */
const MIN_VERSION_TO_RAISE = 70016;

/** what most peers are announced: one empty list, not one per peer */
const NO_FEATURES: readonly Frame[] = Object.freeze([]);
const FROM_PEER = ['version', 'verack', 'feature'];
const FROM_NODE = ['version', 'verack'];

/** Who opened the connection: a peer to our listener (`inbound`), or our node to a peer (`outbound`). */
export type SessionKind = 'inbound' | 'outbound';

/**
 * What the handshake needs of its session (PeerSession implements it): the session itself
 * rather than an object of closures, which cost every idle peer three functions and their context.
 */
export interface HandshakeHost extends ChainTarget {
  readonly kind: SessionKind;
  readonly info: PeerInfo;
  /** the session's logger (made at its first line) */
  readonly log: Logger;
  /** would a line of `level` be written? (asked before `log`, so no logger is made for nothing) */
  logging(level: 'debug' | 'info'): boolean;
  /** the session's per-peer, per-reason rate-limited lines (what a peer can cause frame by frame) */
  readonly logs: LogLimiter;
  readonly chain: HookChain;
  /** send a frame to the peer outside the stream order (feature announcements) */
  injectToPeer(raw: Buffer): void;
  /** both veracks seen */
  handshakeCompleted(): void;
}

/** The settings the handshake reads (the proxy's, shared by every session). */
export interface HandshakeSettings {
  readonly network: Network;
  readonly v2: V2Policy;
}

/**
 * The version handshake as the proxy takes part in it: it records the peer's version and the
 * BIP 434 features it announces, mends the version our node sends (the peer's real address for
 * an inbound peer, NODE_P2P_V2 cleared when the proxy offers no v2, 70017 when it announces
 * features), and sends the hooks' features to the peer once our node's version went out and the
 * peer's version is known: right after that version for an inbound peer, right after the
 * peer's version for a connection our node opened (BIP 434: between version and verack).
 */
export class Handshake {
  #peerVerack = false;
  #nodeVerack = false;
  #nodeVersionSeen = false;
  #nodeVersionSent = false;
  #announced = false;
  /** the hooks' feature frames for this peer, once its version is known */
  #features: readonly Frame[] | null = null;

  constructor(
    private readonly settings: HandshakeSettings,
    private readonly host: HandshakeHost,
  ) {}

  // peer → node

  interceptsFromPeer(command: string): boolean {
    return FROM_PEER.includes(command);
  }

  mayInterceptFromPeer(field: Buffer, offset: number, n: number): boolean {
    return FROM_PEER.some((c) => commandFieldStartsWith(c, field, offset, n));
  }

  fromPeer(frame: Frame): void {
    if (frame.command === 'version') this.#recordPeerVersion(frame);
    else if (frame.command === 'verack') {
      this.#peerVerack = true;
      this.#checkComplete();
    } else if (frame.command === 'feature') this.#recordPeerFeature(frame);
  }

  // node → peer

  interceptsFromNode(command: string): boolean {
    return FROM_NODE.includes(command);
  }

  mayInterceptFromNode(field: Buffer, offset: number, n: number): boolean {
    return FROM_NODE.some((c) => commandFieldStartsWith(c, field, offset, n));
  }

  /** The frame to forward in place of `frame`. */
  fromNode(frame: Frame): Frame {
    if (frame.command === 'version' && !this.#nodeVersionSeen) {
      this.#nodeVersionSeen = true;
      return this.#rewriteNodeVersion(frame);
    }
    if (frame.command === 'verack') {
      this.#nodeVerack = true;
      this.#checkComplete();
    }
    return frame;
  }

  forwardedToPeer(frame: Frame): void {
    if (frame.command !== 'version' || this.#nodeVersionSent) return;
    this.#nodeVersionSent = true;
    this.#announce();
  }

  #recordPeerVersion(frame: Frame): void {
    const info = this.host.info;
    if (info.version !== null) return;
    try {
      const v = decodeFrame<VersionMessage>(frame);
      info.version = v.version;
      info.services = v.services;
      info.userAgent = v.userAgent ?? null;
      info.startHeight = v.startHeight ?? null;
      info.relay = v.relay ?? null;
      if (this.host.logging('info')) this.host.log.info({ version: v.version, services: `0x${v.services.toString(16)}`, userAgent: v.userAgent, startHeight: v.startHeight }, 'peer version');
    } catch (err) {
      // bitcoind judges the message; we only failed to learn from it
      this.host.logs.line('version_undecodable', 'info', { err: (err as Error).message }, 'could not decode the peer version message');
      return;
    }
    this.#announce();
  }

  #recordPeerFeature(frame: Frame): void {
    // BIP 434: only from peers of 70017+, between their version and their verack
    if (this.#peerVerack || (this.host.info.version ?? 0) < FEATURE_MIN_VERSION) return;
    try {
      const f = decodeFrame<FeatureMessage>(frame);
      // ids are printable ASCII in the x: protocol (docs/x-protocol.md §1.5, §2.9): others are ignored
      if (this.host.info.features.size < 64 && /^[\x20-\x7e]+$/.test(f.featureId)) this.host.info.features.set(f.featureId, Buffer.from(f.data));
    } catch (err) {
      this.host.logs.line('feature_malformed', 'info', { err: (err as Error).message }, 'unparseable feature message from peer');
    }
  }

  /** Hooks' features for this peer: asked once, when its version is known, only for 70017+. */
  #collect(): readonly Frame[] {
    const chain = this.host.chain;
    this.#features ??= (this.host.info.version ?? 0) >= FEATURE_MIN_VERSION && chain.featureProviders.length > 0 ? chain.features(this.host) : NO_FEATURES;
    return this.#features;
  }

  #announce(): void {
    if (!this.#nodeVersionSent || this.host.info.version === null || this.#announced || this.host.closed) return;
    this.#announced = true;
    for (const f of this.#collect()) this.host.injectToPeer(f.raw);
    this.#features = NO_FEATURES; // sent once: the session need not keep them
  }

  /**
   * bitcoind sees an inbound peer as 127.0.0.1: tell the peer its real address and port, so it
   * can still learn its external address from us. With `v2: reject`, clear NODE_P2P_V2 so peers
   * do not waste a connection on a v2 attempt; with `terminate`, set it: the proxy speaks v2
   * whether or not bitcoind does.
   */
  #rewriteNodeVersion(frame: Frame): Frame {
    try {
      const v = decodeFrame<VersionMessage>(frame);
      const info = this.host.info;
      if (this.host.kind === 'inbound') {
        const ip = addressTo16Bytes(info.address);
        if (ip) v.addrRecv = { ...v.addrRecv, ip, port: info.port };
      }
      if (this.settings.v2 === 'reject') v.services &= ~NODE_P2P_V2;
      else if (this.settings.v2 === 'terminate') v.services |= NODE_P2P_V2;
      // the peer's version is known for an inbound peer; our own connection sends first, so
      // then it is raised whenever some hook may announce
      const announcing = info.version !== null ? this.#collect().length > 0 : this.host.chain.featureProviders.length > 0;
      if (announcing && v.version < FEATURE_MIN_VERSION && v.version >= MIN_VERSION_TO_RAISE) {
        // The proxy itself speaks BIP 434 for bitcoind; raising 70016 to 70017 only promises
        // that feature messages are accepted before verack, which 0.21+ does by ignoring them.
        v.version = FEATURE_MIN_VERSION;
      }
      return encodeFrame(this.settings.network, 'version', encodePayload('version', v));
    } catch (err) {
      this.host.log.warn({ err: (err as Error).message }, 'could not rewrite the version message of bitcoind; forwarding it unchanged');
      return frame;
    }
  }

  #checkComplete(): void {
    if (!this.#peerVerack || !this.#nodeVerack || this.host.info.handshakeComplete) return;
    this.host.info.handshakeComplete = true;
    this.host.handshakeCompleted();
  }
}
