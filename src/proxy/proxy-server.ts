import * as net from 'node:net';
import type { Logger } from 'pino';
import type { Network } from '../codec/index.js';
import type { AcceptDecision } from '../hooks/accept-result.js';
import type { HookConnection, HookPeer, OutgoingMessage } from '../hooks/api.js';
import { HookChain } from '../hooks/chain.js';
import { parseDuration } from '../hooks/units.js';
import type { HookRuntimeHost } from '../hooks/loader.js';
import { isThenable } from '../hooks/result.js';
import { normalizeAddress, subnetContains, parseSubnet, type Subnet } from './address.js';
import { readProxyHeader } from './proxy-protocol.js';
import { BackendDisconnectTracker } from './backend-disconnects.js';
import { BanList, parseBanSubnet, type Ban } from './ban-list.js';
import { ConnectionLimits, type Slot } from './connection-limits.js';
import { ConnectionRate, type ConnectionRateSettings } from './connection-rate.js';
import { Eviction } from './eviction.js';
import { nullObserver, type CloseReason, type ProxyObserver, type RefuseReason } from './observer.js';
import { adoptWithReadBuffer, connectWithReadBuffer } from './transport/adopt-socket.js';
import { LendingReadBuffer } from './transport/lending-read-buffer.js';
import type { PeerInfo } from './peer-info.js';
import { PeerSession, type SessionHost, type SessionSettings } from './peer-session.js';
import { listenOn } from './listen.js';

export interface Endpoint {
  host: string;
  port: number;
}

export interface ProxySettings extends SessionSettings {
  listen: Endpoint[];
  backend: Endpoint;
  maxPeers: number;
  reservedPeers: number;
  /** ms a peer in a reserved slot has to be marked paid (setPriority) */
  reservedAuthTimeout: number;
  maxPeersPerAddress: number;
  maxPeersPerSubnet: number;
  backendConnectTimeout: number;
  banThreshold: number;
  banDuration: number;
  backendDisconnects: { count: number; window: number; duration: number };
  connectionRate: ConnectionRateSettings;
  /** load balancers (CIDRs) whose connections start with a PROXY protocol header; empty: none */
  proxyProtocolTrusted?: readonly string[];
}

/** How often eviction samples which peers are idle. */
const IDLE_SAMPLE_MS = 15_000;
const BACKEND_PROBE_MS = 5_000;

export interface ProxyServerOptions {
  settings: ProxySettings;
  bans: BanList;
  log: Logger;
  observer?: ProxyObserver;
  /** the hook chain; empty when not given */
  chain?: HookChain;
  /** tells other proxies of bans made here (the shared store); none: bans stay local */
  banSync?: BanSync;
  /** per-address and per-subnet slots counted over several processes (workers); none: counted here */
  slotGate?: SlotGate;
}

/**
 * Slots held across processes: `workers: N` counts per-address and per-subnet connections in
 * the primary, so N workers allow what one would. Asked once per accepted connection (never per
 * message); answers null (granted) or the refusal reason.
 */
export interface SlotGate {
  acquire(address: string): Promise<RefuseReason | null>;
  release(address: string): void;
}

/** What the proxy needs of a shared store: publish its own ban changes, and whether it is reachable. */
export interface BanSync {
  readonly kind: string;
  readonly up: boolean;
  banAdded(ban: Ban): void;
  banRemoved(subnet: string): void;
}

/** Sessions held elsewhere that hooks reach through the proxy's host (see attachSessions). */
export interface AttachedSessions {
  sessions(): { readonly hookPeer: HookPeer }[];
  /** false when `peerId` is not one of these */
  send(peerId: number, message: OutgoingMessage): boolean;
  disconnect(peerId: number, reason: string): void;
}

/**
 * Accepts peers, applies the accept checks, opens one backend connection per accepted peer and
 * runs a PeerSession for it. The checks, cheapest first, all before bitcoind is contacted: shut
 * down, banned, per-address and per-subnet limits, connection rate, onAccept hooks, and when
 * every regular slot is taken, a reserved slot (`reservedPeers`), and when those are taken too,
 * eviction of one peer (see eviction.ts) or refusal. A peer in a reserved slot must be marked as
 * paid by a hook (setPriority) within `reservedAuthTimeout`, or it moves to a regular slot that
 * has become free, or it is closed (`reserve_timeout`). Priority peers are never evicted.
 */
export class ProxyServer implements SessionHost, HookRuntimeHost {
  readonly observer: ProxyObserver;
  readonly log: Logger;
  readonly bans: BanList;
  readonly banSync: BanSync | null;
  readonly #gate: SlotGate | null;
  settings: ProxySettings;
  /** swapped on reload; a message already inside the old chain finishes there */
  chain: HookChain;
  readonly #servers: net.Server[] = [];
  readonly #attached: AttachedSessions[] = [];
  readonly #sessions = new Map<number, PeerSession>();
  /** accepted peers whose backend connection is still being opened */
  readonly #pending = new Set<net.Socket>();
  readonly #limits: ConnectionLimits;
  readonly #backendDisconnects: BackendDisconnectTracker;
  readonly #rate: ConnectionRate;
  readonly #eviction = new Eviction();
  #idleSampler: NodeJS.Timeout | null = null;
  /** sessions in a reserved slot that are not marked paid yet: their deadline */
  readonly #reserveTimers = new Map<number, NodeJS.Timeout>();
  /** accepted sockets waiting for async onAccept hooks */
  readonly #accepting = new Set<net.Socket>();
  #nextId = 1;
  #closing = false;
  #backendUp: boolean | null = null;
  /** load balancers that send the PROXY protocol */
  #trusted: Subnet[];
  /** trusted connections whose PROXY header is still being read */
  readonly #headers = new Set<net.Socket>();
  #probing = false;
  #probeTimer: NodeJS.Timeout | null = null;

  constructor(options: ProxyServerOptions) {
    this.settings = options.settings;
    this.bans = options.bans;
    this.banSync = options.banSync ?? null;
    this.#gate = options.slotGate ?? null;
    this.log = options.log;
    this.observer = options.observer ?? nullObserver;
    this.chain = options.chain ?? HookChain.empty({ network: this.settings.network, maxMessageSize: this.settings.maxMessageSize, timeoutMs: 5000 });
    this.#limits = new ConnectionLimits(this.settings);
    const bd = this.settings.backendDisconnects;
    this.#backendDisconnects = new BackendDisconnectTracker(bd.count, bd.window, {
      survivorSince: (t) => this.#survivorSince(t),
      judged: (address, verdict) =>
        this.log[verdict === 'counted' ? 'info' : 'debug']({ peer: address, verdict }, verdict === 'counted' ? 'bitcoind disconnected this peer: counted towards a ban' : 'bitcoind closed a session amid an outage or a mass close: not counted'),
      limitReached: (address) => {
        const b = this.settings.backendDisconnects;
        this.ban(address, b.duration, `bitcoind disconnected it ${b.count} times within ${b.window / 1000}s`, 'backend_disconnects');
      },
    });
    this.#rate = new ConnectionRate(this.settings.connectionRate);
    this.#trusted = trustedSubnets(this.settings);
  }

  /** How the candidates of backend-initiated disconnects were judged (counted or not, and why). */
  get backendDisconnectVerdicts(): Readonly<BackendDisconnectTracker['judged']> {
    return this.#backendDisconnects.judged;
  }

  get network(): Network {
    return this.settings.network;
  }

  /** Addresses actually bound (useful with port 0). */
  addresses(): Endpoint[] {
    return this.#servers.map((s) => {
      const a = s.address() as net.AddressInfo;
      return { host: a.address, port: a.port };
    });
  }

  sessions(): PeerSession[] {
    return [...this.#sessions.values()];
  }

  /** null: no shared store; else whether it is reachable now (unreachable: /ready says degraded) */
  get storeUp(): boolean | null {
    return this.banSync && this.banSync.kind !== 'local' ? this.banSync.up : null;
  }

  /** null until the first backend connection attempt (the probe at listen() makes one at once). */
  get backendUp(): boolean | null {
    return this.#backendUp;
  }

  /**
   * One TCP connect to bitcoind, closed at once: readiness must not wait for the first peer,
   * and while bitcoind is down the probe repeats so /ready turns true when it is back.
   */
  probeBackend(): void {
    if (this.#closing || this.#probing) return;
    this.#probing = true;
    const { host, port } = this.settings.backend;
    const probe = net.connect({ host, port });
    const timer = setTimeout(() => probe.destroy(new Error(`connect timeout after ${this.settings.backendConnectTimeout} ms`)), this.settings.backendConnectTimeout);
    const done = (err: Error | null) => {
      clearTimeout(timer);
      probe.destroy();
      this.#probing = false;
      if (err) {
        this.observer.backendConnectFailed();
        this.#backendDisconnects.backendConnectFailed();
      }
      this.#backendReachable(err);
    };
    probe.once('connect', () => done(null));
    probe.once('error', (err) => done(err));
  }

  /** Record what the last backend connect showed; while it is down, probe again soon. */
  #backendReachable(err: Error | null): void {
    const { host, port } = this.settings.backend;
    if (err) {
      if (this.#backendUp !== false) this.log.error({ backend: `${host}:${port}`, err: err.message }, 'backend unreachable: refusing peers until it is back');
      this.#backendUp = false;
      if (!this.#closing && !this.#probeTimer) {
        this.#probeTimer = setTimeout(() => {
          this.#probeTimer = null;
          if (this.#backendUp === false) this.probeBackend();
        }, BACKEND_PROBE_MS).unref();
      }
      return;
    }
    if (this.#backendUp === false) this.log.info({ backend: `${host}:${port}` }, 'backend reachable again');
    this.#backendUp = true;
  }

  async listen(): Promise<void> {
    this.observer.bansCurrent(this.bans.size);
    this.#idleSampler ??= setInterval(() => this.#eviction.sample(this.#liveInfos()), IDLE_SAMPLE_MS).unref();
    for (const ep of this.settings.listen) {
      const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (s) => this.#accept(s));
      server.on('error', (err) => this.log.error({ err: err.message, listen: ep }, 'listener error'));
      const a = await listenOn(server, ep);
      this.#servers.push(server);
      this.log.info({ listen: `${a.address}:${a.port}`, backend: `${this.settings.backend.host}:${this.settings.backend.port}`, network: this.network.name }, 'listening for peers');
    }
  }

  /** Apply new settings to new connections and to limits; running sessions keep theirs. */
  updateSettings(settings: ProxySettings): void {
    this.settings = settings;
    this.#limits.settings = settings;
    this.#rate.settings = settings.connectionRate;
    this.#trusted = trustedSubnets(settings);
    this.#backendDisconnects.count = settings.backendDisconnects.count;
    this.#backendDisconnects.windowMs = settings.backendDisconnects.window;
  }

  #refuse(socket: net.Socket, address: string, reason: RefuseReason, extra: Record<string, unknown> = {}): void {
    this.observer.connectionRefused(reason);
    // a churning client would otherwise write a line per attempt: the counter has them all
    this.log[reason === 'rate_limited' ? 'debug' : 'info']({ peer: `${address}:${socket.remotePort}`, reason, ...extra }, 'connection refused');
    socket.on('error', () => {});
    socket.destroy();
  }

  #accept(socket: net.Socket): void {
    const source = normalizeAddress(socket.remoteAddress ?? '');
    if (!this.#trusted.some((t) => subnetContains(t, source))) return this.#acceptFrom(socket, source, socket.remotePort ?? 0);
    // a load balancer: the real peer is in the PROXY header; nothing is decided before it
    if (this.#closing) return this.#refuse(socket, source, 'shutting_down');
    socket.on('error', () => {});
    this.#headers.add(socket);
    readProxyHeader(socket, this.settings.handshakeTimeout).then(
      (h) => {
        if (!this.#headers.delete(socket)) return; // destroyed by close()
        if (h.kind === 'local') return void socket.destroy(); // the balancer's health check
        this.#acceptFrom(socket, h.address, h.port);
      },
      (err: Error) => {
        this.#headers.delete(socket);
        this.#refuse(socket, source, 'proxy_protocol', { err: err.message });
      },
    );
  }

  #acceptFrom(socket: net.Socket, address: string, port: number): void {
    if (this.#closing) return this.#refuse(socket, address, 'shutting_down');
    const ban = this.bans.find(address);
    if (ban) return this.#refuse(socket, address, 'banned', { ban: ban.subnet, until: new Date(ban.until).toISOString() });
    const limited = this.#limits.check(address);
    if (limited && limited !== 'max_peers') return this.#refuse(socket, address, limited);
    if (!this.#rate.take(address)) return this.#refuse(socket, address, 'rate_limited');
    socket.on('error', () => {}); // until the session owns it; errors surface as close later
    const chain = this.chain;
    if (chain.acceptHooks.length === 0) return this.#admit(socket, address, port);
    if (this.#accepting.size >= Math.max(64, this.settings.maxPeers)) return this.#refuse(socket, address, 'accept_busy');
    const conn: HookConnection = { address, port, localAddress: normalizeAddress(socket.localAddress ?? ''), localPort: socket.localPort ?? 0 };
    const decision = chain.accept(conn);
    if (!isThenable(decision)) return this.#decided(socket, address, port, decision);
    this.#accepting.add(socket);
    // chain.accept never rejects: a failing hook is a 'fault' decision
    void decision.then((d) => {
      if (!this.#accepting.delete(socket)) return; // destroyed by close()
      if (this.#closing) return this.#refuse(socket, address, 'shutting_down');
      const banned = this.bans.find(address); // a ban may have arrived while the hooks ran
      if (banned) return this.#refuse(socket, address, 'banned', { ban: banned.subnet });
      this.#decided(socket, address, port, d);
    });
  }

  /** Apply what the onAccept hooks decided. */
  #decided(socket: net.Socket, address: string, port: number, d: AcceptDecision): void {
    switch (d.kind) {
      case 'accept':
        return this.#admit(socket, address, port);
      case 'refuse':
        return this.#refuse(socket, address, 'hook', { hook: d.hook, why: d.reason });
      case 'ban': {
        const ms = d.duration === undefined ? undefined : (parseDuration(d.duration) ?? undefined);
        this.ban(address, ms ?? this.settings.banDuration, `hook ${d.hook}: ${d.reason}`, 'hook');
        return this.#refuse(socket, address, 'banned', { hook: d.hook });
      }
      case 'fault':
        this.log.error({ hook: d.fault.hook, kind: d.fault.kind, err: d.fault.message }, 'onAccept hook failed: refusing the connection');
        return this.#refuse(socket, address, 'hook_error', { hook: d.fault.hook });
    }
  }

  /** The last check (slots, evicting one peer when full), then the backend connection. */
  #admit(socket: net.Socket, address: string, port: number, gated = false): void {
    if (socket.destroyed) return;
    const gate = this.#gate;
    if (gate && !gated) {
      // the other workers' peers count too: ask the primary for the address's slot first
      this.#accepting.add(socket);
      void gate.acquire(address).then((refused) => {
        if (!this.#accepting.delete(socket) || socket.destroyed || this.#closing) {
          if (!refused) gate.release(address);
          return void socket.destroy();
        }
        if (refused) return this.#refuse(socket, address, refused);
        this.#admit(socket, address, port, true);
      });
      return;
    }
    let limited = this.#limits.check(address);
    if (limited === 'max_peers' && this.#evictOne()) limited = this.#limits.check(address);
    if (limited) {
      if (gated) gate!.release(address);
      return this.#refuse(socket, address, limited);
    }
    const slot = this.#limits.slot()!;
    this.#limits.acquire(address, slot);
    this.#pending.add(socket);

    // bitcoind → peer carries the bulk (blocks): read through a LendingReadBuffer
    const backendReads = new LendingReadBuffer();
    const backend = connectWithReadBuffer(this.settings.backend.host, this.settings.backend.port, backendReads);
    const timer = setTimeout(() => backend.destroy(new Error(`connect timeout after ${this.settings.backendConnectTimeout} ms`)), this.settings.backendConnectTimeout);
    const fail = (err: Error) => {
      clearTimeout(timer);
      this.#pending.delete(socket);
      this.#releaseSlot(address, slot);
      this.observer.backendConnectFailed();
      this.#backendDisconnects.backendConnectFailed();
      this.#backendReachable(err);
      this.#refuse(socket, address, 'backend_down', { err: err.message });
    };
    backend.once('error', fail);
    backend.once('connect', () => {
      clearTimeout(timer);
      backend.off('error', fail);
      this.#pending.delete(socket);
      this.#backendReachable(null);
      // a ban made while bitcoind took its time to accept: #closeBanned saw no session to close
      const banned = socket.destroyed || this.#closing ? null : this.bans.find(address);
      if (socket.destroyed || this.#closing || banned) {
        this.#releaseSlot(address, slot);
        backend.destroy();
        return banned ? this.#refuse(socket, address, 'banned', { ban: banned.subnet }) : void socket.destroy();
      }
      this.#startSession(socket, address, port, slot, backend, backendReads);
    });
  }

  /** Both sockets are connected: the session. Its reads go to it through the LendingReadBuffers, with no closure per session. */
  #startSession(socket: net.Socket, address: string, port: number, slot: Slot, backend: net.Socket, backendReads: LendingReadBuffer): void {
    // the peer's bytes too go through a LendingReadBuffer, when its socket can be re-wrapped for it
    const peerReads = new LendingReadBuffer();
    const peer = adoptWithReadBuffer(socket, peerReads);
    const s = new PeerSession(this.#nextId++, peer ?? socket, backend, address, this.settings, this, backendReads, 'inbound', peer && peerReads, port);
    this.#sessions.set(s.info.id, s);
    this.observer.connectionAccepted();
    this.observer.sessionOpened();
    if (slot === 'reserved') {
      s.info.reserved = true;
      this.#armReserve(s);
    }
    if (s.logging('info')) s.log.info({ backendLocalPort: backend.localPort, ...(slot === 'reserved' ? { slot } : {}) }, 'peer connected');
    s.start();
    if (peer) peerReads.deliverTo(s);
    backendReads.deliverTo(s); // with what bitcoind sent before the session existed
  }

  sessionEnded(session: PeerSession, reason: CloseReason): void {
    if (!this.#sessions.delete(session.info.id)) return;
    this.#releaseSlot(session.address, this.#slotOf(session));
    this.#disarmReserve(session.info.id);
    const seconds = (Date.now() - session.info.connectedAt) / 1000;
    this.observer.sessionClosed(reason, seconds);
    if (session.logging('info')) session.log.info({ reason, seconds: Math.round(seconds * 1000) / 1000, bytesIn: session.info.bytesIn, bytesOut: session.info.bytesOut }, 'peer disconnected');
    if ((reason === 'backend_closed' || reason === 'backend_error') && !this.#closing) {
      // judged a little later, once it is known whether this was the peer or an outage
      this.#backendDisconnects.backendClosed(session.address, session.info.handshakeComplete, this.#sessions.size + 1);
    }
  }

  #releaseSlot(address: string, slot: Slot): void {
    this.#limits.release(address, slot);
    this.#gate?.release(address);
  }

  #liveInfos(): PeerInfo[] {
    const infos: PeerInfo[] = [];
    for (const s of this.#sessions.values()) if (!s.closed) infos.push(s.info);
    return infos;
  }

  /** Every slot is taken: close the peer eviction picks. False when every peer is protected. */
  #evictOne(): boolean {
    const victim = this.#eviction.select(this.#liveInfos());
    const session = victim && this.#sessions.get(victim.id);
    if (!session) return false;
    session.log.info({ handshakeComplete: victim.handshakeComplete, seconds: Math.round((Date.now() - victim.connectedAt) / 1000) }, 'evicted to make room for a new peer');
    session.close('evicted'); // sessionEnded releases its slot now
    return true;
  }

  #slotOf(session: PeerSession): Slot {
    return session.info.reserved ? 'reserved' : 'regular';
  }

  /** A session in a reserved slot: unless a hook marks it paid in time, it leaves the slot. */
  #armReserve(session: PeerSession): void {
    const id = session.info.id;
    this.#disarmReserve(id);
    const timer = setTimeout(() => {
      this.#reserveTimers.delete(id);
      if (session.closed || session.info.priority || !session.info.reserved) return;
      if (this.#limits.toRegular()) {
        session.info.reserved = false;
        session.log.debug('not marked paid in time, but a regular slot is free: moved there');
        return;
      }
      session.log.info({ timeoutMs: this.settings.reservedAuthTimeout }, 'held a reserved slot and was not marked paid in time: disconnected');
      session.close('reserve_timeout');
    }, this.settings.reservedAuthTimeout);
    timer.unref();
    this.#reserveTimers.set(id, timer);
  }

  #disarmReserve(id: number): void {
    const t = this.#reserveTimers.get(id);
    if (t) clearTimeout(t);
    this.#reserveTimers.delete(id);
  }

  /** Is a session that was open (and talking) before `t` still open? Then the backend stayed up. */
  #survivorSince(t: number): boolean {
    for (const s of this.#sessions.values()) if (!s.closed && s.info.handshakeComplete && s.info.connectedAt < t) return true;
    return false;
  }

  misbehaving(session: PeerSession, points: number, reason: string): void {
    this.observer.misbehaviour(reason);
    session.logs.line('misbehaviour', 'info', { points, score: session.info.misbehaviour, reason }, 'misbehaviour');
    if (session.info.misbehaviour >= this.settings.banThreshold) {
      this.ban(session.address, this.settings.banDuration, `misbehaviour: ${reason}`, 'misbehaviour');
    }
  }

  banSession(session: PeerSession, reason: string, durationMs: number | undefined): void {
    this.ban(session.address, durationMs ?? this.settings.banDuration, reason, 'hook');
  }

  // HookRuntimeHost: what hooks may do outside a message callback

  /**
   * Another set of sessions the hooks reach through this host (ctx.peers, ctx.send,
   * ctx.disconnect): our node's outbound sessions of the SOCKS5 front. Their ids never collide
   * with ours; they stay out of this server's limits, eviction and admin listing.
   */
  attachSessions(other: AttachedSessions): void {
    this.#attached.push(other);
  }

  peers(): HookPeer[] {
    const own = this.sessions().map((s) => s.hookPeer);
    return this.#attached.length === 0 ? own : own.concat(...this.#attached.map((a) => a.sessions().map((s) => s.hookPeer)));
  }

  send(peerId: number, message: OutgoingMessage): boolean {
    const own = this.#sessions.get(peerId);
    if (own) return own.sendMessage(message);
    return this.#attached.some((a) => a.send(peerId, message));
  }

  disconnect(peerId: number, reason: string): void {
    const s = this.#sessions.get(peerId);
    if (!s) {
      for (const a of this.#attached) a.disconnect(peerId, reason);
      return;
    }
    s.log.info({ reason }, 'disconnected by a hook');
    s.close('hook');
  }

  misbehave(peerId: number, points: number, reason: string): void {
    this.#sessions.get(peerId)?.addMisbehaviour(points, reason);
  }

  /** A hook marks a peer paid (protected from eviction, keeps a reserved slot) or no longer. */
  setPriority(peerId: number, priority: boolean): boolean {
    const s = this.#sessions.get(peerId);
    if (!s || s.closed) return false;
    if (s.info.priority === priority) return true;
    s.info.priority = priority;
    s.log.debug({ priority, reserved: s.info.reserved }, 'priority changed by a hook');
    if (priority) this.#disarmReserve(peerId);
    else if (s.info.reserved) {
      // no longer paid: out of the reserve into a free regular slot, or the clock runs again
      if (this.#limits.toRegular()) s.info.reserved = false;
      else this.#armReserve(s);
    }
    return true;
  }

  /** Ban an address or subnet and disconnect every session it covers. */
  ban(subnet: string, durationMs: number, reason: string, kind = 'admin'): Ban | null {
    // every ban but an operator's is the proxy's own: bounded by bans.maxAutomatic
    const ban = this.bans.add(subnet, durationMs, reason, kind !== 'admin');
    if (!ban) return null;
    this.observer.banAdded(kind);
    this.observer.bansCurrent(this.bans.size);
    this.log.warn({ ban: ban.subnet, until: new Date(ban.until).toISOString(), reason }, 'banned');
    this.banSync?.banAdded(ban);
    this.#closeBanned(ban);
    return ban;
  }

  #closeBanned(ban: Ban): void {
    const parsed = parseSubnet(ban.subnet)!;
    for (const s of this.#sessions.values()) if (subnetContains(parsed, s.address)) s.close('banned');
  }

  unban(subnet: string): boolean {
    const removed = this.bans.remove(subnet);
    this.observer.bansCurrent(this.bans.size);
    if (removed) this.banSync?.banRemoved(parseBanSubnet(subnet)!.text);
    return removed;
  }

  // BanSink: ban changes other proxies made, from the shared store (not published back)

  applySharedBan(ban: Ban): void {
    const merged = this.bans.merge(ban);
    if (!merged) return;
    this.observer.bansCurrent(this.bans.size);
    this.log.warn({ ban: merged.subnet, until: new Date(merged.until).toISOString(), reason: merged.reason }, 'banned by another proxy');
    this.#closeBanned(merged);
  }

  applySharedUnban(subnet: string): void {
    if (!this.bans.remove(subnet)) return;
    this.observer.bansCurrent(this.bans.size);
    this.log.info({ ban: subnet }, 'ban lifted by another proxy');
  }

  localBans(): Ban[] {
    return this.bans.list();
  }

  /** Stop accepting, close every session, save bans. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#backendDisconnects.close();
    if (this.#probeTimer) clearTimeout(this.#probeTimer);
    if (this.#idleSampler) clearInterval(this.#idleSampler);
    for (const t of this.#reserveTimers.values()) clearTimeout(t);
    this.#reserveTimers.clear();
    for (const s of this.#accepting) s.destroy();
    this.#accepting.clear();
    for (const s of this.#headers) s.destroy();
    this.#headers.clear();
    const closed = Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.#pending) s.destroy();
    for (const s of this.#sessions.values()) s.close('shutdown');
    await closed;
    await this.bans.save();
    this.log.info('proxy stopped');
  }
}

function trustedSubnets(settings: ProxySettings): Subnet[] {
  return (settings.proxyProtocolTrusted ?? []).map((c) => {
    const s = parseSubnet(c);
    if (!s) throw new Error(`proxyProtocol.trusted: not an address or CIDR: ${c}`);
    return s;
  });
}
