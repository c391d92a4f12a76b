import * as net from 'node:net';
import type { Logger } from 'pino';
import {
  FrameDecoder,
  FrameError,
  PayloadWriter,
  decodeFrame,
  encodeFrame,
  encodePayload,
  guessTransport,
  v1Prefix,
  type FeatureMessage,
  type Frame,
  type Network,
  type VersionMessage,
} from '../codec/index.js';
import { FEATURE_MIN_VERSION, X_FEATURE_ID, type HookPeer, type HookResult, type OutgoingMessage } from '../hooks/api.js';
import type { ChainTarget, HookChain, LoadedHook } from '../hooks/chain.js';
import { HookFault, isThenable } from '../hooks/result.js';
import { addressTo16Bytes } from './address.js';
import { CoalescingWriter } from './coalescing-writer.js';
import type { LendingReadBuffer } from './lending-read-buffer.js';
import type { CloseReason, Direction, ProxyObserver } from './observer.js';
import type { PeerInfo } from './peer-info.js';
import { parseDurationMs } from '../hooks/duration.js';
import { HookBudget, type HookBudgetSettings } from './hook-budget.js';
import { LogLimiter } from './log-limiter.js';

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
  /** bytes of frames that may wait behind an async hook, per direction, before reading pauses */
  hookQueue: number;
  /** an x: command no module registered: drop it, or answer x:unknown */
  xUnknown: 'drop' | 'reply';
  /** hook time this peer may use per window; null: unlimited */
  hookBudget: HookBudgetSettings | null;
  hookBudgetAction: 'throttle' | 'disconnect';
  /** log lines per reason this peer can cause per minute */
  logLinesPerMinute: number;
}

export interface SessionHost {
  readonly observer: ProxyObserver;
  readonly log: Logger;
  /** the session ended; `initiator` tells who closed first */
  sessionEnded(session: PeerSession, reason: CloseReason): void;
  /** add misbehaviour points; the host bans at its threshold */
  misbehaving(session: PeerSession, points: number, reason: string): void;
  /** ban the session's address (duration in ms, or the configured default) */
  banSession(session: PeerSession, reason: string, durationMs: number | undefined): void;
  /** the hook chain for new messages (swapped on reload) */
  readonly chain: HookChain;
}

/** Frames of one direction wait here, in order, while a hook of that direction is async. */
interface Lane {
  queue: Frame[];
  bytes: number;
  busy: boolean;
}

/** NODE_P2P_V2 is bit 11; BIP 434 needs protocol 70017, and 70016 peers ignore unknown pre-verack messages. */
const MIN_VERSION_TO_RAISE = 70016;

/** How long a closing side may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 500;

/**
 * One proxied peer: its socket, its own connection to bitcoind, a frame decoder each way.
 * Untouched frames go through as the raw bytes that came in; only the version message that
 * bitcoind sends is rewritten (see #rewriteBackendVersion).
 */
export class PeerSession implements ChainTarget {
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
  readonly #inLane: Lane = { queue: [], bytes: 0, busy: false };
  readonly #outLane: Lane = { queue: [], bytes: 0, busy: false };
  /** BIP 434 feature frames to send right after bitcoind's version */
  #featureFrames: Frame[] | null = null;
  readonly budget: HookBudget;
  /** log lines this peer can cause frame by frame go through here */
  readonly logs: LogLimiter;
  /** x: frames from this peer although it did not announce our feature */
  #xWithoutFeature = 0;

  constructor(
    id: number,
    readonly peer: net.Socket,
    readonly backend: net.Socket,
    readonly address: string,
    private readonly settings: SessionSettings,
    private readonly host: SessionHost,
    /** the backend socket's reusable read buffer, when it was opened with onread */
    private readonly backendReads: LendingReadBuffer | null = null,
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
      features: new Map(),
      state: new Map(),
    };
    this.log = host.log.child({ peer: `${address}:${this.info.port}`, session: id });
    this.#prefix = v1Prefix(settings.network);
    this.budget = new HookBudget(settings.hookBudget);
    this.logs = new LogLimiter(this.log, settings.logLinesPerMinute, host.observer);
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

  /** the peer as hooks see it */
  get hookPeer(): HookPeer {
    return this.info;
  }

  /** Start relaying; the backend socket must already be connected. */
  start(): void {
    this.info.backendLocalPort = this.backend.localPort ?? null;
    this.peer.setNoDelay(true);
    this.backend.setNoDelay(true);
    this.peer.on('data', (chunk: Buffer) => this.#onPeerData(chunk));
    if (!this.backendReads) this.backend.on('data', (chunk: Buffer) => this.onBackendRead(chunk));
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
    this.host.chain.connect(this);
    if (!this.#closed) this.peer.resume();
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
    this.host.chain.disconnect(this.info, reason);
    this.logs.flush();
    this.host.sessionEnded(this, reason);
  }

  /** Send a frame the proxy built to the peer (hooks' local answers use this). */
  sendToPeer(frame: Frame): void {
    if (this.#closed) return;
    this.#toPeer.add(frame.raw);
    this.#toPeer.flush();
  }

  /**
   * Send a message a hook built. x: messages go only to peers that announced our BIP 434
   * feature, as the BIP requires for messages a feature introduces. Returns false if refused.
   */
  sendMessage(m: OutgoingMessage): boolean {
    if (this.#closed) return false;
    if (m.command.startsWith('x:') && !this.info.features.has(X_FEATURE_ID)) {
      this.logs.line('x_refused', 'info', { command: m.command }, 'not sending an x: message to a peer that did not announce our feature');
      this.host.chain.observer.xCommand('refused');
      return false;
    }
    this.sendToPeer(encodeFrame(this.settings.network, m.command, m.payload ?? Buffer.alloc(0), this.settings.maxMessageSize));
    return true;
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

  /** Bytes from bitcoind. With a reused read buffer, `chunk` is only valid during this call. */
  onBackendRead(chunk: Buffer): void {
    if (this.#closed) return;
    this.info.bytesOut += chunk.length;
    if (this.info.transport === 'v2-passthrough') {
      this.#relayRaw(this.peer, chunk, this.backend, this.settings.sendBuffer);
    } else {
      this.peer.cork();
      this.#outbound.push(chunk);
      this.#toPeer.flush();
      this.peer.uncork();
      this.#backpressure(this.backend, this.peer, this.settings.sendBuffer);
    }
    // Whatever the peer socket could not write at once still points into the read buffer.
    if (this.backendReads && this.peer.writableLength > 0) this.backendReads.lend();
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
      this.logs.line('bad_checksum', 'info', { direction, code: err.code, command: err.command }, err.message);
      return;
    }
    this.log.warn({ direction, code: err.code, command: err.command }, `protocol error, closing: ${err.message}`);
    this.close('protocol_error');
  }

  #onPeerFrame(frame: Frame): void {
    if (this.#closed) return;
    if (this.#inLane.busy) return this.#enqueue(this.#inLane, frame, this.peer);
    this.#processInbound(frame);
  }

  #onBackendFrame(frame: Frame): void {
    if (this.#closed) return;
    if (this.#outLane.busy) return this.#enqueue(this.#outLane, frame, this.backend);
    this.#processOutbound(frame);
  }

  #processInbound(frame: Frame): void {
    if (this.budget.exhausted) return this.#throttle(this.#inLane, frame, this.#toBackend, this.peer, false);
    this.info.messagesIn++;
    this.host.observer.frame('inbound', frame.command, frame.raw.length);
    const command = frame.command;
    if (command === 'version') this.#recordPeerVersion(frame);
    else if (command === 'verack') {
      this.#peerVerack = true;
      this.#checkHandshake();
    } else if (command === 'feature') this.#recordPeerFeature(frame);
    const chain = this.host.chain;
    if (command.startsWith('x:')) {
      // private to proxy modules: never forwarded to bitcoind
      if (!this.info.features.has(X_FEATURE_ID) && this.#xFromPeerWithoutFeature(command)) return;
      const handled = chain.runX(frame, this, Date.now());
      if (isThenable(handled)) this.#wait(this.#inLane, handled.then(() => null), this.#toBackend, this.peer);
      else if (!handled) this.#unknownX(command);
      return;
    }
    if (chain.hooksFor('inbound', command).length === 0) {
      this.#toBackend.add(frame.raw); // fast path: raw bytes, no decode, no copy
      return;
    }
    const out = chain.run('inbound', frame, this, Date.now());
    if (isThenable(out)) this.#wait(this.#inLane, out, this.#toBackend, this.peer);
    else if (out) this.#toBackend.add(out.raw);
  }

  #processOutbound(frame: Frame): void {
    if (this.budget.exhausted) return this.#throttle(this.#outLane, frame, this.#toPeer, this.backend, true);
    this.info.messagesOut++;
    this.host.observer.frame('outbound', frame.command, frame.raw.length);
    if (frame.command === 'version' && !this.#backendVersionSeen) {
      this.#backendVersionSeen = true;
      frame = this.#rewriteBackendVersion(frame);
    } else if (frame.command === 'verack') {
      this.#backendVerack = true;
      this.#checkHandshake();
    }
    const chain = this.host.chain;
    if (chain.hooksFor('outbound', frame.command).length === 0) return this.#forwardToPeer(frame);
    // hooks may keep the message past this read (async, caches): give them bytes of their own
    if (this.backendReads) frame = frame.copy();
    const out = chain.run('outbound', frame, this, Date.now());
    if (isThenable(out)) this.#wait(this.#outLane, out, this.#toPeer, this.backend, true);
    else if (out) this.#forwardToPeer(out);
  }

  #forwardToPeer(frame: Frame): void {
    this.#toPeer.add(frame.raw);
    if (this.#featureFrames && frame.command === 'version') {
      for (const f of this.#featureFrames) this.#toPeer.add(f.raw);
      this.#featureFrames = null;
    }
  }

  /** A frame arrived while a hook of its direction is async: keep it (copied) in order. */
  #enqueue(lane: Lane, frame: Frame, src: net.Socket): void {
    const copy = frame.copy(); // the read buffer it points into may be reused
    lane.queue.push(copy);
    lane.bytes += copy.raw.length;
    if (lane.bytes >= this.settings.hookQueue && !src.isPaused()) src.pause();
  }

  /**
   * The peer used up its hook time: hold `frame` first in its lane (it came before anything
   * queued there), stop reading the source, and drain again when the budget has refilled.
   */
  #throttle(lane: Lane, frame: Frame, writer: CoalescingWriter, src: net.Socket, outbound: boolean): void {
    const copy = frame.copy();
    lane.queue.unshift(copy);
    lane.bytes += copy.raw.length;
    if (!src.isPaused()) src.pause();
    this.#wait(lane, this.budget.refilled(), writer, src, outbound);
  }

  /** An async hook holds this lane: later frames queue until it settles, then drain in order. */
  #wait(lane: Lane, pending: Promise<Frame | null>, writer: CoalescingWriter, src: net.Socket, outbound = false): void {
    lane.busy = true;
    writer.flush();
    pending.then((out) => {
      if (this.#closed) return;
      if (out) {
        if (outbound) this.#forwardToPeer(out);
        else writer.add(out.raw);
      }
      lane.busy = false;
      while (!lane.busy && lane.queue.length > 0 && !this.#closed) {
        const next = lane.queue.shift()!;
        lane.bytes -= next.raw.length;
        if (outbound) this.#processOutbound(next);
        else this.#processInbound(next);
      }
      writer.flush();
      if (!lane.busy && lane.bytes < this.settings.hookQueue && src.isPaused() && !this.#closed) src.resume();
    }, (err: unknown) => this.fault(new HookFault('(chain)', 'throw', `the hook chain failed: ${String(err)}`)));
  }

  #unknownX(command: string): void {
    this.logs.line('x_unknown', 'debug', { command }, 'x: command no module registered');
    if (this.settings.xUnknown !== 'reply' || !this.info.features.has(X_FEATURE_ID)) return;
    this.sendMessage({ command: 'x:unknown', payload: new PayloadWriter(16).varString(command).finish() });
  }

  #recordPeerFeature(frame: Frame): void {
    if (this.#peerVerack) return; // BIP 434: only between version and verack
    try {
      const f = decodeFrame<FeatureMessage>(frame);
      if (this.info.features.size < 64) this.info.features.set(f.featureId, Buffer.from(f.data));
    } catch (err) {
      this.logs.line('feature_malformed', 'info', { err: (err as Error).message }, 'unparseable feature message from peer');
    }
  }

  // ChainTarget: what a hook result does to this session

  hookLog(hook: LoadedHook, entry: NonNullable<HookResult['log']>): void {
    const e = typeof entry === 'string' ? { msg: entry } : entry;
    const { level = 'info', msg, ...fields } = e;
    this.logs.line(`hook:${hook.name}`, level, { hook: hook.name, ...fields }, msg);
  }

  hookTime(ms: number): void {
    if (!this.budget.charge(ms)) return;
    const action = this.settings.hookBudgetAction;
    this.host.observer.hookBudgetExceeded(action);
    const b = this.settings.hookBudget!;
    this.logs.line('hook_budget', 'warn', { action, budgetMs: b.budgetMs, windowMs: b.windowMs }, `peer used up its hook time budget: ${action === 'throttle' ? 'throttling' : 'disconnecting'}`);
    if (action === 'disconnect') this.close('hook_budget');
  }

  /**
   * BIP 434: a feature's messages are for peers that negotiated it. The first x: frame from a
   * peer that did not is ignored quietly; each later one is misbehaviour. Returns true when the
   * session closed over it.
   */
  #xFromPeerWithoutFeature(command: string): boolean {
    if (++this.#xWithoutFeature === 1) {
      this.logs.line('x_without_feature', 'info', { command }, 'x: message from a peer that did not announce our feature');
      return false;
    }
    this.addMisbehaviour(1, 'x: messages without announcing the feature');
    return this.#closed;
  }

  push(_hook: LoadedHook, message: OutgoingMessage): void {
    this.sendMessage(message);
  }

  misbehave(_hook: LoadedHook, points: number, reason: string): void {
    this.addMisbehaviour(points, reason);
  }

  /** The peer's misbehaviour score grows; the host bans at the threshold. */
  addMisbehaviour(points: number, reason: string): void {
    this.info.misbehaviour += points;
    this.host.misbehaving(this, points, reason);
  }

  ban(hook: LoadedHook, reason: string, duration: string | number | undefined): void {
    const ms = duration === undefined ? undefined : typeof duration === 'number' ? duration * 1000 : parseDurationMs(duration);
    this.host.banSession(this, `hook ${hook.name}: ${reason}`, ms);
  }

  disconnect(hook: LoadedHook, reason: string): void {
    this.log.info({ hook: hook.name, reason }, 'hook disconnects peer');
    this.close('hook');
  }

  fault(fault: HookFault): void {
    this.log.error({ hook: fault.hook, kind: fault.kind, err: fault.message }, 'hook incompatibility: disconnecting peer');
    this.close('hook_error');
  }

  #recordPeerVersion(frame: Frame): void {
    if (this.info.version !== null) return;
    try {
      const v = decodeFrame<VersionMessage>(frame);
      this.info.version = v.version;
      this.info.services = v.services;
      this.info.userAgent = v.userAgent ?? null;
      this.info.startHeight = v.startHeight ?? null;
      this.info.relay = v.relay ?? null;
      this.log.info({ version: v.version, services: `0x${v.services.toString(16)}`, userAgent: v.userAgent, startHeight: v.startHeight }, 'peer version');
    } catch (err) {
      // bitcoind judges the message; we only failed to learn from it
      this.logs.line('version_undecodable', 'info', { err: (err as Error).message }, 'could not decode the peer version message');
    }
  }

  /**
   * bitcoind sees the peer as 127.0.0.1; tell the peer its real address and port, so it can
   * still learn its external address from us. With the v2 policy `reject`, clear NODE_P2P_V2
   * so peers do not waste a connection on a v2 attempt.
   */
  #rewriteBackendVersion(frame: Frame): Frame {
    try {
      const v = decodeFrame<VersionMessage>(frame);
      const ip = addressTo16Bytes(this.address);
      if (ip) v.addrRecv = { ...v.addrRecv, ip, port: this.info.port };
      if (this.settings.v2 === 'reject') v.services &= ~NODE_P2P_V2;
      this.#featureFrames = this.#collectFeatures();
      if (this.#featureFrames.length > 0 && v.version < FEATURE_MIN_VERSION && v.version >= MIN_VERSION_TO_RAISE) {
        // The proxy itself speaks BIP 434 for bitcoind; raising 70016 to 70017 only promises
        // that feature messages are accepted before verack, which 0.21+ does by ignoring them.
        v.version = FEATURE_MIN_VERSION;
      }
      return encodeFrame(this.settings.network, 'version', encodePayload('version', v));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not rewrite the version message of bitcoind; forwarding it unchanged');
      return frame;
    }
  }

  /** BIP 434 feature frames the hooks announce to this peer (only for peers of 70017+). */
  #collectFeatures(): Frame[] {
    const frames: Frame[] = [];
    if ((this.info.version ?? 0) < FEATURE_MIN_VERSION) return frames;
    for (const h of this.host.chain.featureProviders) {
      try {
        for (const f of h.module.features!(this.info, h.ctx)) {
          frames.push(encodeFrame(this.settings.network, 'feature', encodePayload('feature', { featureId: f.id, data: Buffer.from(f.data ?? []) })));
        }
      } catch (err) {
        this.log.error({ hook: h.name, err: (err as Error).message }, 'features() failed; announcing nothing for this hook');
      }
    }
    return frames;
  }

  #checkHandshake(): void {
    if (!this.#peerVerack || !this.#backendVerack || this.info.handshakeComplete) return;
    this.info.handshakeComplete = true;
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
    this.log.debug('handshake complete');
  }
}
