import * as net from 'node:net';
import type { Logger } from 'pino';
import {
  FrameDecoder,
  FrameError,
  decodePayload,
  encodeFrame,
  encodePayload,
  guessTransport,
  v1Prefix,
  type Frame,
  type Network,
  type VersionMessage,
} from '../codec/index.js';
import { addressTo16Bytes } from './address.js';
import { CoalescingWriter } from './coalescing-writer.js';
import type { CloseReason, Direction, ProxyObserver } from './observer.js';
import type { PeerInfo } from './peer-info.js';

/** BIP324 NODE_P2P_V2 service bit. */
export const NODE_P2P_V2 = 1n << 11n;

export interface SessionSettings {
  network: Network;
  checksum: 'always' | 'lazy';
  v2: 'reject' | 'passthrough';
  handshakeTimeout: number;
  idleTimeout: number;
  maxMessageSize: number;
  sendBuffer: number;
  receiveBuffer: number;
}

export interface SessionHost {
  readonly observer: ProxyObserver;
  readonly log: Logger;
  /** the session ended; `initiator` tells who closed first */
  sessionEnded(session: PeerSession, reason: CloseReason): void;
  /** add misbehaviour points; the host bans at its threshold */
  misbehaving(session: PeerSession, points: number, reason: string): void;
}

/** How long a closing side may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 500;

/**
 * One proxied peer: its socket, its own connection to bitcoind, a frame decoder each way.
 * Untouched frames go through as the raw bytes that came in; only the version message that
 * bitcoind sends is rewritten (see #rewriteBackendVersion).
 */
export class PeerSession {
  readonly info: PeerInfo;
  readonly log: Logger;
  #closed = false;
  #closeReason: CloseReason | null = null;
  #peerVerack = false;
  #backendVerack = false;
  #backendVersionSeen = false;
  #head: Buffer = Buffer.alloc(0);
  readonly #prefix: Buffer;
  #handshakeTimer: NodeJS.Timeout | null = null;
  readonly #toBackend: CoalescingWriter;
  readonly #toPeer: CoalescingWriter;
  readonly #inbound: FrameDecoder;
  readonly #outbound: FrameDecoder;

  constructor(
    id: number,
    readonly peer: net.Socket,
    readonly backend: net.Socket,
    readonly address: string,
    private readonly settings: SessionSettings,
    private readonly host: SessionHost,
  ) {
    this.info = {
      id,
      address,
      port: peer.remotePort ?? 0,
      backendLocalPort: null,
      connectedAt: Date.now(),
      transport: 'detecting',
      version: null,
      services: null,
      userAgent: null,
      startHeight: null,
      relay: null,
      handshakeComplete: false,
      bytesIn: 0,
      bytesOut: 0,
      messagesIn: 0,
      messagesOut: 0,
      misbehaviour: 0,
    };
    this.log = host.log.child({ peer: `${address}:${this.info.port}`, session: id });
    this.#prefix = v1Prefix(settings.network);
    this.#toBackend = new CoalescingWriter(backend);
    this.#toPeer = new CoalescingWriter(peer);
    const decoderOptions = { network: settings.network, maxPayload: settings.maxMessageSize, checksum: settings.checksum };
    this.#inbound = new FrameDecoder(decoderOptions, {
      onFrame: (f) => this.#onPeerFrame(f),
      onError: (e) => this.#onFrameError('inbound', e),
    });
    this.#outbound = new FrameDecoder(decoderOptions, {
      onFrame: (f) => this.#onBackendFrame(f),
      onError: (e) => this.#onFrameError('outbound', e),
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get closeReason(): CloseReason | null {
    return this.#closeReason;
  }

  /** Start relaying; the backend socket must already be connected. */
  start(): void {
    this.info.backendLocalPort = this.backend.localPort ?? null;
    this.peer.setNoDelay(true);
    this.backend.setNoDelay(true);
    this.peer.on('data', (chunk: Buffer) => this.#onPeerData(chunk));
    this.backend.on('data', (chunk: Buffer) => this.#onBackendData(chunk));
    this.peer.on('end', () => this.close('peer_closed'));
    this.backend.on('end', () => this.close('backend_closed'));
    this.peer.on('close', () => this.close('peer_closed'));
    this.backend.on('close', () => this.close('backend_closed'));
    this.peer.on('error', (err) => this.#onSocketError('peer_error', err));
    this.backend.on('error', (err) => this.#onSocketError('backend_error', err));
    if (this.settings.idleTimeout > 0) {
      this.peer.setTimeout(this.settings.idleTimeout, () => this.close('idle_timeout'));
    }
    if (this.settings.handshakeTimeout > 0) {
      this.#handshakeTimer = setTimeout(() => this.close('handshake_timeout'), this.settings.handshakeTimeout);
      this.#handshakeTimer.unref();
    }
    this.peer.resume();
  }

  /** Close both sides: flush what is queued, then destroy after a short grace period. */
  close(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    for (const s of [this.peer, this.backend]) {
      s.pause();
      if (!s.destroyed) {
        s.end();
        setTimeout(() => s.destroy(), CLOSE_GRACE_MS).unref();
      }
    }
    this.host.sessionEnded(this, reason);
  }

  /** Send a frame the proxy built to the peer (hooks' local answers use this). */
  sendToPeer(frame: Frame): void {
    this.#toPeer.add(frame.raw);
    this.#toPeer.flush();
  }

  #onSocketError(reason: CloseReason, err: Error): void {
    this.log.debug({ err: err.message, code: (err as NodeJS.ErrnoException).code }, `${reason === 'peer_error' ? 'peer' : 'backend'} socket error`);
    this.close(reason);
  }

  #onPeerData(chunk: Buffer): void {
    if (this.#closed) return;
    this.info.bytesIn += chunk.length;
    if (this.info.transport === 'detecting') {
      chunk = this.#detectTransport(chunk);
      if (chunk.length === 0) return;
    }
    if (this.info.transport === 'v2-passthrough') {
      this.#relayRaw(this.backend, chunk, this.peer, this.settings.receiveBuffer);
      return;
    }
    this.backend.cork();
    this.#inbound.push(chunk);
    this.#toBackend.flush();
    this.backend.uncork();
    this.#backpressure(this.peer, this.backend, this.settings.receiveBuffer);
  }

  #onBackendData(chunk: Buffer): void {
    if (this.#closed) return;
    this.info.bytesOut += chunk.length;
    if (this.info.transport === 'v2-passthrough') {
      this.#relayRaw(this.peer, chunk, this.backend, this.settings.sendBuffer);
      return;
    }
    this.peer.cork();
    this.#outbound.push(chunk);
    this.#toPeer.flush();
    this.peer.uncork();
    this.#backpressure(this.backend, this.peer, this.settings.sendBuffer);
  }

  /**
   * bitcoind's rule: a stream that does not start with the v1 version header is v2.
   * Returns the bytes to process now (empty while still undecided).
   */
  #detectTransport(chunk: Buffer): Buffer {
    const head = this.#head.length ? Buffer.concat([this.#head, chunk]) : chunk;
    const guess = guessTransport(head, this.#prefix);
    if (guess === 'undecided') {
      this.#head = Buffer.from(head);
      return Buffer.alloc(0);
    }
    this.#head = Buffer.alloc(0);
    if (guess === 'v1') {
      this.info.transport = 'v1';
      return head;
    }
    if (this.settings.v2 === 'passthrough') {
      this.info.transport = 'v2-passthrough';
      this.host.observer.v2Passthrough();
      this.log.info('peer opened with BIP324 v2 bytes: piping raw to bitcoind, hooks bypassed (v2: passthrough)');
      return head;
    }
    this.log.info({ first: head.subarray(0, 16).toString('hex') }, 'peer did not open with a v1 version message (BIP324 v2 or garbage): closing (v2: reject)');
    this.close('v2_unsupported');
    return Buffer.alloc(0);
  }

  #relayRaw(dst: net.Socket, chunk: Buffer, src: net.Socket, limit: number): void {
    dst.write(chunk);
    this.#backpressure(src, dst, limit);
  }

  /** Stop reading from `src` while `dst` has `limit` bytes or more queued (bitcoind's -maxsendbuffer idea). */
  #backpressure(src: net.Socket, dst: net.Socket, limit: number): void {
    if (dst.writableLength < limit || !dst.writableNeedDrain || src.isPaused()) return;
    src.pause();
    dst.once('drain', () => {
      if (!this.#closed) src.resume();
    });
  }

  #onFrameError(direction: Direction, err: FrameError): void {
    this.host.observer.protocolError(err.code);
    if (err.code === 'BAD_CHECKSUM') {
      // bitcoind drops such a message and keeps the connection; so do we.
      this.log.info({ direction, code: err.code, command: err.command }, err.message);
      return;
    }
    this.log.warn({ direction, code: err.code, command: err.command }, `protocol error, closing: ${err.message}`);
    this.close('protocol_error');
  }

  #onPeerFrame(frame: Frame): void {
    if (this.#closed) return;
    this.info.messagesIn++;
    this.host.observer.frame('inbound', frame.command, frame.raw.length);
    switch (frame.command) {
      case 'version':
        this.#recordPeerVersion(frame);
        break;
      case 'verack':
        this.#peerVerack = true;
        this.#checkHandshake();
        break;
    }
    this.#toBackend.add(frame.raw);
  }

  #onBackendFrame(frame: Frame): void {
    if (this.#closed) return;
    this.info.messagesOut++;
    this.host.observer.frame('outbound', frame.command, frame.raw.length);
    if (frame.command === 'version' && !this.#backendVersionSeen) {
      this.#backendVersionSeen = true;
      this.#toPeer.add(this.#rewriteBackendVersion(frame).raw);
      return;
    }
    if (frame.command === 'verack') {
      this.#backendVerack = true;
      this.#checkHandshake();
    }
    this.#toPeer.add(frame.raw);
  }

  #recordPeerVersion(frame: Frame): void {
    if (this.info.version !== null) return;
    try {
      frame.assertChecksum();
      const v = decodePayload<VersionMessage>('version', frame.payload);
      this.info.version = v.version;
      this.info.services = v.services;
      this.info.userAgent = v.userAgent ?? null;
      this.info.startHeight = v.startHeight ?? null;
      this.info.relay = v.relay ?? null;
      this.log.info({ version: v.version, services: `0x${v.services.toString(16)}`, userAgent: v.userAgent, startHeight: v.startHeight }, 'peer version');
    } catch (err) {
      // bitcoind judges the message; we only failed to learn from it
      this.log.info({ err: (err as Error).message }, 'could not decode the peer version message');
    }
  }

  /**
   * bitcoind sees the peer as 127.0.0.1; tell the peer its real address and port, so it can
   * still learn its external address from us. With the v2 policy `reject`, clear NODE_P2P_V2
   * so peers do not waste a connection on a v2 attempt.
   */
  #rewriteBackendVersion(frame: Frame): Frame {
    try {
      frame.assertChecksum();
      const v = decodePayload<VersionMessage>('version', frame.payload);
      const ip = addressTo16Bytes(this.address);
      if (ip) v.addrRecv = { ...v.addrRecv, ip, port: this.info.port };
      if (this.settings.v2 === 'reject') v.services &= ~NODE_P2P_V2;
      return encodeFrame(this.settings.network, 'version', encodePayload('version', v));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not rewrite the version message of bitcoind; forwarding it unchanged');
      return frame;
    }
  }

  #checkHandshake(): void {
    if (!this.#peerVerack || !this.#backendVerack || this.info.handshakeComplete) return;
    this.info.handshakeComplete = true;
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
    this.log.debug('handshake complete');
  }

  /** The peer's misbehaviour score grows; the host bans at the threshold. */
  misbehave(points: number, reason: string): void {
    this.info.misbehaviour += points;
    this.host.misbehaving(this, points, reason);
  }
}
