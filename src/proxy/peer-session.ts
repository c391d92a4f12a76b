import type * as net from 'node:net';
import type { Logger } from 'pino';
import { PayloadWriter, commandFieldStartsWith, encodeFrame, type Frame, type FrameError, type Network } from '../codec/index.js';
import { X_FEATURE_ID, type HookPeer, type HookResult, type OutgoingMessage } from '../hooks/api.js';
import type { HookChain, LoadedHook } from '../hooks/chain.js';
import { parseDuration } from '../hooks/units.js';
import { HookFault, isThenable } from '../hooks/result.js';
import { Handshake, type HandshakeHost, type SessionKind } from './handshake.js';
import { HookBudget, type HookBudgetSettings } from './hook-budget.js';
import { LogLimiter } from './log-limiter.js';
import type { CloseReason, Direction, ProxyObserver } from './observer.js';
import { noteInboundCommand, notePing, notePong } from './peer-activity.js';
import { SessionInfo } from './peer-info.js';
import { Pipeline, type FrameStage, type PipelineHost } from './pipeline.js';
import { pauseWhileFull } from './transport/backpressure.js';
import { TransportDetector, type V2Policy } from './transport/detect.js';
import type { LendingReadBuffer, ReadTarget } from './transport/lending-read-buffer.js';
import { v1Transport } from './transport/v1.js';
import { V2Connection, type V2FailReason, type V2Role } from './transport/v2/connection.js';
import type { V2Opening } from './transport/v2/dial.js';

export { NODE_P2P_V2, type SessionKind } from './handshake.js';

export interface SessionSettings {
  network: Network;
  /** `always` verifies every frame before forwarding it, so every frame is stored whole first */
  checksum: 'always' | 'lazy';
  v2: V2Policy;
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

const EMPTY_CHUNK = Buffer.alloc(0);
const PROXY_V1 = Buffer.from('PROXY ', 'latin1');
const PROXY_V2 = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** The first bytes are a PROXY protocol v1 or v2 header (HAProxy's), not a peer's opening. */
function isProxyProtocolHeader(b: Buffer): boolean {
  return (b.length >= PROXY_V1.length && b.subarray(0, PROXY_V1.length).equals(PROXY_V1)) || (b.length >= PROXY_V2.length && b.subarray(0, PROXY_V2.length).equals(PROXY_V2));
}

/** How long a closing side may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 500;

/**
 * The session a socket belongs to, for the socket listeners below: they are shared by every
 * session (an emitter calls its listeners with `this` set to itself), where arrow functions
 * cost each idle session seven functions and their context.
 */
const SESSION = Symbol('session');
type SessionSocket = net.Socket & { [SESSION]?: PeerSession };

function peerGone(this: SessionSocket): void {
  this[SESSION]!.close('peer_closed');
}
function backendGone(this: SessionSocket): void {
  this[SESSION]!.close('backend_closed');
}
function peerError(this: SessionSocket, err: Error): void {
  this[SESSION]!.socketError('peer_error', err);
}
function backendError(this: SessionSocket, err: Error): void {
  this[SESSION]!.socketError('backend_error', err);
}
function peerIdle(session: PeerSession): void {
  session.idleTimerFired();
}
function peerData(this: SessionSocket, chunk: Buffer): void {
  this[SESSION]!.onPeerRead(chunk);
}
function backendData(this: SessionSocket, chunk: Buffer): void {
  this[SESSION]!.onBackendRead(chunk);
}

/**
 * One proxied connection between a peer and our node: each socket's bytes go through a
 * Pipeline (transport → proxy stage → hooks → the other socket). This class only composes:
 * the sockets and their lifecycle, transport detection, the handshake, x: routing, and what a
 * hook result does to the session (ChainTarget).
 *
 * `kind` says who opened it. `inbound`: a peer connected to our listener and `backend` is our
 * connection to bitcoind. `outbound`: our node opened it (see OutboundSession) and the roles of
 * the sockets are swapped; the pipeline is the same, hook directions keep their meaning
 * (inbound = peer → node).
 */
export class PeerSession implements PipelineHost, HandshakeHost, ReadTarget {
  readonly info: SessionInfo;
  #log: Logger | null = null;
  #closed = false;
  #closeReason: CloseReason | null = null;
  #handshakeTimer: NodeJS.Timeout | null = null;
  /** limits.idleTimeout: refreshed by each read from the peer */
  #idleTimer: NodeJS.Timeout | null = null;
  /** while the transport is being detected */
  #detector: TransportDetector | null = null;
  readonly #handshake: Handshake;
  /** peer → node */
  readonly #toNode: Pipeline;
  /** node → peer */
  readonly #toPeer: Pipeline;
  /** this peer's share of synchronous hook time (bitcoind's per-peer fairness): made when a hook first charges it */
  #budget: HookBudget | null = null;
  /** made at the first line (see `logs`) */
  #logs: LogLimiter | null = null;
  /** x: frames from this peer although it did not announce our feature */
  #xWithoutFeature = 0;
  /** the BIP324 link to the peer, when the proxy speaks v2 with it */
  #v2: V2Connection | null = null;

  constructor(
    id: number,
    readonly peer: net.Socket,
    readonly backend: net.Socket,
    readonly address: string,
    private readonly settings: SessionSettings,
    private readonly host: SessionHost,
    /** the backend socket's reusable read buffer, when it was opened with onread */
    private readonly backendReads: LendingReadBuffer | null = null,
    readonly kind: SessionKind = 'inbound',
    /** the peer socket's reusable read buffer, when it reads with onread (see adoptWithReadBuffer) */
    private readonly peerReads: LendingReadBuffer | null = null,
    /** the peer's port, when the caller knows it (asking the socket makes it keep its address) */
    port: number | null = null,
  ) {
    this.info = new SessionInfo(id, address, port ?? peer.remotePort ?? 0, settings.v2 === 'reject' ? 'v1' : 'detecting');
    const transport = v1Transport({ network: settings.network, maxPayload: settings.maxMessageSize, checksum: settings.checksum });
    const common = { network: settings.network, transport, hookQueue: settings.hookQueue };
    const toPeerWriter = transport.writer(peer);
    this.#handshake = new Handshake(settings, this);
    this.#toNode = new Pipeline({ ...common, direction: 'inbound', src: peer, out: transport.writer(backend), reads: peerReads }, this, new PeerStage(this, this.#handshake));
    this.#toPeer = new Pipeline({ ...common, direction: 'outbound', src: backend, out: toPeerWriter, reads: backendReads }, this, new NodeStage(this, this.#handshake));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** This peer's logger: a pino child made at its first line, not for every idle peer (about half a KB each). */
  get log(): Logger {
    return (this.#log ??= this.host.log.child({ peer: `${this.address}:${this.info.port}`, session: this.info.id, ...(this.kind === 'outbound' ? { kind: this.kind } : {}) }));
  }

  /** Would a line of `level` be written? Ask before a routine line, so that no logger is made for nothing. */
  logging(level: 'debug' | 'info'): boolean {
    return this.#log ? this.#log.isLevelEnabled(level) : this.host.log.isLevelEnabled(level);
  }

  /**
   * The parts made on first use that this session has made so far: an idle peer makes none
   * (the per-session footprint, see docs/architecture.md). For tests and debugging.
   */
  get madeOnUse(): string[] {
    const made: [string, boolean][] = [
      ['logger', this.#log !== null],
      ['logLimiter', this.#logs !== null],
      ['hookBudget', this.#budget !== null],
      ['detector', this.#detector !== null],
      ['laneQueue', this.#toNode.lane.queueMade || this.#toPeer.lane.queueMade],
    ];
    return made.filter(([, m]) => m).map(([name]) => name);
  }

  /** log lines this peer can cause frame by frame go through here */
  get logs(): LogLimiter {
    return (this.#logs ??= new LogLimiter(this.log, this.settings.logLinesPerMinute, this.host.observer));
  }

  get closeReason(): CloseReason | null {
    return this.#closeReason;
  }

  /** the peer as hooks see it */
  get hookPeer(): HookPeer {
    return this.info;
  }

  get chain(): HookChain {
    return this.host.chain;
  }

  /** Start relaying; both sockets must already be connected. */
  start(): void {
    this.info.backendLocalPort = (this.kind === 'inbound' ? this.backend.localPort : this.backend.remotePort) ?? null;
    this.peer.setNoDelay(true);
    this.backend.setNoDelay(true);
    const peer: SessionSocket = this.peer;
    const backend: SessionSocket = this.backend;
    peer[SESSION] = this;
    backend[SESSION] = this;
    if (!this.peerReads) peer.on('data', peerData);
    if (!this.backendReads) backend.on('data', backendData);
    peer.on('end', peerGone);
    backend.on('end', backendGone);
    peer.on('close', peerGone);
    backend.on('close', backendGone);
    peer.on('error', peerError);
    backend.on('error', backendError);
    if (this.settings.idleTimeout > 0) {
      // Not the socket's timeout: writes reset that one too, and bitcoind writes to a silent peer
      // (pings, announcements) more often than any useful timeout. The session is its argument: no closure.
      this.#idleTimer = setTimeout(peerIdle, this.settings.idleTimeout, this).unref();
    }
    if (this.settings.handshakeTimeout > 0) {
      this.#handshakeTimer = setTimeout(() => this.close('handshake_timeout'), this.settings.handshakeTimeout);
      this.#handshakeTimer.unref();
    }
    this.host.chain.connect(this);
    if (!this.#closed) {
      this.peer.resume();
      this.backend.resume();
    }
  }

  /** Close both sides: flush what is queued, then destroy after a short grace period. */
  close(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (reason === 'handshake_timeout' && this.#v2 && !this.#v2.ready) this.#v2Failed('handshake_timeout', 'the v2 handshake did not finish in time');
    for (const s of [this.peer, this.backend]) {
      s.pause();
      if (!s.destroyed) {
        s.end();
        setTimeout(() => s.destroy(), CLOSE_GRACE_MS).unref();
      }
    }
    this.host.chain.disconnect(this.info, reason);
    this.#logs?.flush();
    this.host.sessionEnded(this, reason);
  }

  /** Send a frame the proxy built to the peer (hooks' local answers use this); never inside a frame passing through. */
  sendToPeer(frame: Frame): void {
    if (this.#closed || this.info.transport === 'v2-passthrough') return;
    this.#toPeer.inject(frame.raw);
  }

  /**
   * Send a message a hook built. x: messages go only to peers that announced our BIP 434
   * feature, as the BIP requires for messages a feature introduces. Returns false if refused.
   */
  sendMessage(m: OutgoingMessage): boolean {
    if (this.#closed || this.info.transport === 'v2-passthrough') return false;
    if (m.command.startsWith('x:') && !this.info.features.has(X_FEATURE_ID)) {
      this.logs.line('x_refused', 'info', { command: m.command }, 'not sending an x: message to a peer that did not announce our feature');
      this.host.chain.observer.xCommand('refused');
      return false;
    }
    this.sendToPeer(encodeFrame(this.settings.network, m.command, m.payload ?? Buffer.alloc(0), this.settings.maxMessageSize));
    return true;
  }

  /** @internal limits.idleTimeout passed without a byte from the peer */
  idleTimerFired(): void {
    // while the proxy itself does not read the peer (backpressure), the silence is not the peer's
    if (this.peer.isPaused()) return void this.#idleTimer?.refresh();
    this.close('idle_timeout');
  }

  /** @internal a socket listener: `reason` says which socket */
  socketError(reason: 'peer_error' | 'backend_error', err: Error): void {
    if (this.logging('debug')) this.log.debug({ err: err.message, code: (err as NodeJS.ErrnoException).code }, `${reason === 'peer_error' ? 'peer' : 'backend'} socket error`);
    this.close(reason);
  }

  /** ReadTarget: bytes read through one of the session's LendingReadBuffers, the last `chunk.length - fresh` of them carried over from the read before */
  readFrom(from: LendingReadBuffer, chunk: Buffer, fresh: number): void {
    if (from === this.peerReads) this.onPeerRead(chunk, fresh);
    else this.onBackendRead(chunk, fresh);
  }

  /**
   * Bytes from the peer. With a reused read buffer, `chunk` is only valid during this call, and
   * its first `chunk.length - fresh` bytes are the end of the read before, carried over.
   */
  onPeerRead(chunk: Buffer, fresh = chunk.length): void {
    if (this.#closed) return;
    this.#idleTimer?.refresh();
    this.info.bytesIn += fresh; // the rest was counted with the read it was carried over from
    if (this.kind === 'inbound' && this.info.transport === 'detecting') chunk = this.#detect(chunk);
    if (chunk.length > 0) this.#relay(this.#toNode, chunk, this.peer, this.backend, this.settings.receiveBuffer);
    // Whatever the backend socket could not write at once still points into the read buffer.
    if (this.peerReads && this.backend.writableLength > 0) this.peerReads.lend();
  }

  /** Bytes from bitcoind. With a reused read buffer, `chunk` is only valid during this call. */
  onBackendRead(chunk: Buffer, fresh = chunk.length): void {
    if (this.#closed) return;
    this.info.bytesOut += fresh;
    if (this.kind === 'outbound' && this.info.transport === 'detecting') chunk = this.#detect(chunk);
    if (chunk.length > 0) this.#relay(this.#toPeer, chunk, this.backend, this.peer, this.settings.sendBuffer);
    // Whatever the peer socket could not write at once still points into the read buffer.
    if (this.backendReads && this.peer.writableLength > 0) this.backendReads.lend();
  }

  #relay(pipeline: Pipeline, chunk: Buffer, src: net.Socket, dst: net.Socket, limit: number): void {
    // pipeline.push writes what it forwards in one write (one writev when it is in pieces)
    if (this.info.transport === 'v2-passthrough') dst.write(chunk);
    else pipeline.push(chunk);
    // on drain, a lane still over its bound keeps the source paused (it resumes it itself)
    pauseWhileFull(src, dst, limit, () => this.#closed || pipeline.lane.holdsSource);
  }

  /** PipelineHost: a lane let its source go; while the other socket's buffer is full, that socket's drain resumes it. */
  resumeSource(direction: Direction): void {
    const inbound = direction === 'inbound';
    const src = inbound ? this.peer : this.backend;
    const dst = inbound ? this.backend : this.peer;
    const limit = inbound ? this.settings.receiveBuffer : this.settings.sendBuffer;
    if (this.#closed) return;
    if (dst.writableLength < limit || !dst.writableNeedDrain) return void src.resume();
    const lane = (inbound ? this.#toNode : this.#toPeer).lane;
    dst.once('drain', () => {
      if (!this.#closed && !lane.holdsSource) src.resume();
    });
  }

  /** The initiator's first bytes decide the transport (only when the proxy offers v2). */
  #detect(chunk: Buffer): Buffer {
    if (this.#closed) return EMPTY_CHUNK;
    const { detected, bytes } = (this.#detector ??= new TransportDetector(this.settings.network, this.settings.v2)).feed(chunk);
    if (detected !== 'undecided') this.#detector = null;
    if (detected === 'v1') this.info.transport = 'v1';
    else if (detected === 'v2' && this.kind === 'inbound' && isProxyProtocolHeader(bytes)) {
      // a load balancer's header from a source not in proxyProtocol.trusted: never a peer's v2 key (2^-48 odds)
      this.log.warn('a PROXY protocol header from an untrusted source: closing');
      this.close('protocol_error');
      return EMPTY_CHUNK;
    }
    // a peer's v2 opening is answered here; our own node opening v2 (outbound kind) speaks it end to end with the remote
    else if (detected === 'v2' && this.settings.v2 === 'terminate' && this.kind === 'inbound') this.speakV2('responder');
    else if (detected === 'v2') {
      this.info.transport = 'v2-passthrough';
      this.host.observer.v2Passthrough();
      this.log.info(`the connection opened with BIP324 v2 bytes: piping raw, hooks bypassed (${this.kind === 'inbound' ? 'v2: passthrough' : 'our node speaks v2 itself'})`);
    }
    return bytes;
  }

  /**
   * Speak BIP324 v2 with the peer from now on: the peer's packets become frames for the same
   * pipeline and hooks, and frames toward the peer become packets. A responder sends its key
   * now; an initiator's opening already went out (see dialPeer).
   */
  protected speakV2(role: V2Role, opening: V2Opening | null = null): void {
    const v2 = new V2Connection({
      role,
      network: this.settings.network,
      socket: this.peer,
      maxMessageSize: this.settings.maxMessageSize,
      ...(opening ? { key: opening.key, garbage: opening.garbage, opened: true } : {}),
      events: {
        ready: (sessionId) => {
          this.host.observer.v2Session(role);
          this.log.info({ role, sessionId: sessionId.toString('hex') }, 'BIP324 v2 handshake complete');
        },
        failed: (reason, detail) => {
          this.#v2Failed(reason, detail);
          this.close('protocol_error');
        },
        dropped: (detail) => {
          this.host.observer.protocolError('V2_NO_V1_FORM');
          this.logs.line('v2_dropped', 'info', { detail }, 'v2 message dropped, as bitcoind drops it');
        },
      },
    });
    this.#v2 = v2;
    this.info.transport = 'v2';
    this.#toNode.readWith(v2);
    this.#toPeer.writeWith(v2.writer(this.peer));
    v2.start();
  }

  #v2Failed(reason: V2FailReason, detail: string): void {
    this.host.observer.v2Failure(reason);
    this.log.warn({ reason, detail, role: this.#v2?.role }, `v2 transport failure, closing: ${detail}`);
  }

  // PipelineHost

  countFrames(direction: Direction, command: string, frames: number, bytes: number): void {
    if (direction === 'inbound') {
      this.info.messagesIn += frames;
      noteInboundCommand(this.info, command);
    } else this.info.messagesOut += frames;
    this.host.observer.frames(direction, command, frames, bytes);
  }

  /** bitcoind's framing rules (net.cpp): a bad checksum or command field drops the frame, a bad magic or size the peer. */
  frameError(direction: Direction, err: FrameError): void {
    this.host.observer.protocolError(err.code);
    if (err.code === 'BAD_CHECKSUM' || err.code === 'BAD_COMMAND') {
      // BAD_COMMAND frames went on for bitcoind to drop and count; `always` dropped BAD_CHECKSUM ones here
      this.logs.line(err.code === 'BAD_CHECKSUM' ? 'bad_checksum' : 'bad_command', 'info', { direction, code: err.code, command: err.command }, err.message);
      return;
    }
    // the offending header went on first, so bitcoind logs and accounts for it as if direct
    this.log.warn({ direction, code: err.code, command: err.command }, `protocol error, closing: ${err.message}`);
    this.close('protocol_error');
  }

  /** @internal PeerStage.enter: the handshake records, x: commands go to their module and never to bitcoind. */
  enterFromPeer(frame: Frame): Frame | null | Promise<unknown> {
    if (frame.command === 'pong') {
      notePong(this.info, frame);
      return frame;
    }
    this.#handshake.fromPeer(frame);
    if (!frame.command.startsWith('x:')) return frame;
    if (!this.info.features.has(X_FEATURE_ID) && this.#xFromPeerWithoutFeature(frame.command)) return null;
    const handled = this.host.chain.runX(frame, this, Date.now());
    if (isThenable(handled)) return Promise.resolve(handled);
    if (!handled) this.#unknownX(frame.command);
    return null;
  }

  /** @internal NodeStage.enter: the handshake mends bitcoind's version; pings are noted for eviction. */
  enterFromNode(frame: Frame): Frame | null | Promise<unknown> {
    if (frame.command !== 'ping') return this.#handshake.fromNode(frame);
    notePing(this.info, frame);
    return frame;
  }

  #unknownX(command: string): void {
    this.logs.line('x_unknown', 'debug', { command }, 'x: command no module registered');
    // like x:hello, nothing is answered before the handshake (docs/x-protocol.md §3.1), nor to a peer without the feature
    if (this.settings.xUnknown !== 'reply' || !this.info.handshakeComplete || !this.info.features.has(X_FEATURE_ID)) return;
    this.sendMessage({ command: 'x:unknown', payload: new PayloadWriter(16).varString(command).finish() });
  }

  /** HandshakeHost: a frame to the peer outside the stream order (feature announcements) */
  injectToPeer(raw: Buffer): void {
    this.#toPeer.inject(raw);
  }

  /** HandshakeHost: both veracks seen */
  handshakeCompleted(): void {
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
    if (this.logging('debug')) this.log.debug('handshake complete');
  }

  // ChainTarget: what a hook result does to this session

  hookLog(hook: LoadedHook, entry: NonNullable<HookResult['log']>): void {
    const e = typeof entry === 'string' ? { msg: entry } : entry;
    const { level = 'info', msg, ...fields } = e;
    this.logs.line(`hook:${hook.name}`, level, { hook: hook.name, ...fields }, msg);
  }

  /** ChainTarget: ms a hook call held the event loop for this peer; over budget, throttle or disconnect. */
  hookTime(ms: number, now: number): void {
    if (this.settings.hookBudget === null) return;
    if (!(this.#budget ??= new HookBudget(this.settings.hookBudget)).charge(ms, now)) return;
    const action = this.settings.hookBudgetAction;
    this.host.observer.hookBudgetExceeded(action);
    const b = this.settings.hookBudget!;
    this.logs.line('hook_budget', 'warn', { action, budgetMs: b.budgetMs, windowMs: b.windowMs }, `peer used up its hook time budget: ${action === 'throttle' ? 'throttling' : 'disconnecting'}`);
    if (action === 'disconnect') this.close('hook_budget');
  }

  /** PipelineHost: while over its hook budget the peer's frames wait (both directions), in order. */
  overBudget(): boolean {
    return this.#budget !== null && this.#budget.exhausted;
  }

  budgetRefilled(): Promise<unknown> {
    return this.#budget!.refilled();
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
    const ms = duration === undefined ? undefined : (parseDuration(duration) ?? undefined);
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
}

// The two stages are classes rather than objects of arrow functions: their methods are shared
// by every session, where closures cost each idle session eight functions and their contexts.

/** peer → node: what the proxy itself must see whole of the peer's frames. */
class PeerStage implements FrameStage {
  constructor(
    private readonly session: PeerSession,
    private readonly hs: Handshake,
  ) {}

  // pongs stay whole (32 bytes) so eviction learns the peer's ping time
  intercepts(command: string): boolean {
    return command.startsWith('x:') || command === 'pong' || this.hs.interceptsFromPeer(command);
  }

  mayIntercept(field: Buffer, offset: number, n: number): boolean {
    return (field[offset] === 0x78 && (n < 2 || field[offset + 1] === 0x3a)) || commandFieldStartsWith('pong', field, offset, n) || this.hs.mayInterceptFromPeer(field, offset, n);
  }

  enter(frame: Frame): Frame | null | Promise<unknown> {
    return this.session.enterFromPeer(frame);
  }

  forwarded(): void {}
}

/** node → peer: the handshake mends bitcoind's version and announces features after it. */
class NodeStage implements FrameStage {
  constructor(
    private readonly session: PeerSession,
    private readonly hs: Handshake,
  ) {}

  intercepts(command: string): boolean {
    return command === 'ping' || this.hs.interceptsFromNode(command);
  }

  mayIntercept(field: Buffer, offset: number, n: number): boolean {
    return commandFieldStartsWith('ping', field, offset, n) || this.hs.mayInterceptFromNode(field, offset, n);
  }

  enter(frame: Frame): Frame | null | Promise<unknown> {
    return this.session.enterFromNode(frame);
  }

  forwarded(frame: Frame): void {
    this.hs.forwardedToPeer(frame);
  }
}
