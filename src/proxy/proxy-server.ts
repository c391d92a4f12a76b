import * as net from 'node:net';
import type { Logger } from 'pino';
import type { Network } from '../codec/index.js';
import type { HookPeer, OutgoingMessage } from '../hooks/api.js';
import { HookChain } from '../hooks/chain.js';
import type { HookRuntimeHost } from '../hooks/loader.js';
import { normalizeAddress, subnetContains, parseSubnet } from './address.js';
import { BackendDisconnectTracker } from './backend-disconnects.js';
import { BanList, type Ban } from './ban-list.js';
import { ConnectionLimits } from './connection-limits.js';
import { nullObserver, type CloseReason, type ProxyObserver, type RefuseReason } from './observer.js';
import { LendingReadBuffer } from './lending-read-buffer.js';
import { PeerSession, type SessionHost, type SessionSettings } from './peer-session.js';

export interface Endpoint {
  host: string;
  port: number;
}

export interface ProxySettings extends SessionSettings {
  listen: Endpoint[];
  backend: Endpoint;
  maxPeers: number;
  maxPeersPerAddress: number;
  maxPeersPerSubnet: number;
  backendConnectTimeout: number;
  banThreshold: number;
  banDuration: number;
  backendDisconnects: { count: number; window: number; duration: number };
}

export interface ProxyServerOptions {
  settings: ProxySettings;
  bans: BanList;
  log: Logger;
  observer?: ProxyObserver;
  /** the hook chain; empty when not given */
  chain?: HookChain;
}

/**
 * Accepts peers, applies the accept checks (bans, limits), opens one backend connection
 * per accepted peer and runs a PeerSession for it.
 */
export class ProxyServer implements SessionHost, HookRuntimeHost {
  readonly observer: ProxyObserver;
  readonly log: Logger;
  readonly bans: BanList;
  settings: ProxySettings;
  /** swapped on reload; a message already inside the old chain finishes there */
  chain: HookChain;
  readonly #servers: net.Server[] = [];
  readonly #sessions = new Map<number, PeerSession>();
  /** accepted peers whose backend connection is still being opened */
  readonly #pending = new Set<net.Socket>();
  readonly #limits: ConnectionLimits;
  readonly #backendDisconnects: BackendDisconnectTracker;
  #nextId = 1;
  #closing = false;
  #backendUp: boolean | null = null;

  constructor(options: ProxyServerOptions) {
    this.settings = options.settings;
    this.bans = options.bans;
    this.log = options.log;
    this.observer = options.observer ?? nullObserver;
    this.chain = options.chain ?? HookChain.empty({ network: this.settings.network, maxMessageSize: this.settings.maxMessageSize, timeoutMs: 5000 });
    this.#limits = new ConnectionLimits(this.settings);
    const bd = this.settings.backendDisconnects;
    this.#backendDisconnects = new BackendDisconnectTracker(bd.count, bd.window);
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

  /** null until the first backend connection attempt. */
  get backendUp(): boolean | null {
    return this.#backendUp;
  }

  async listen(): Promise<void> {
    this.observer.bansCurrent(this.bans.size);
    for (const ep of this.settings.listen) {
      const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (s) => this.#accept(s));
      server.on('error', (err) => this.log.error({ err: err.message, listen: ep }, 'listener error'));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: ep.host, port: ep.port, ipv6Only: ep.host.includes(':') }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.#servers.push(server);
      const a = server.address() as net.AddressInfo;
      this.log.info({ listen: `${a.address}:${a.port}`, backend: `${this.settings.backend.host}:${this.settings.backend.port}`, network: this.network.name }, 'listening for peers');
    }
  }

  /** Apply new settings to new connections and to limits; running sessions keep theirs. */
  updateSettings(settings: ProxySettings): void {
    this.settings = settings;
    this.#limits.settings = settings;
    this.#backendDisconnects.count = settings.backendDisconnects.count;
    this.#backendDisconnects.windowMs = settings.backendDisconnects.window;
  }

  #refuse(socket: net.Socket, address: string, reason: RefuseReason, extra: Record<string, unknown> = {}): void {
    this.observer.connectionRefused(reason);
    this.log.info({ peer: `${address}:${socket.remotePort}`, reason, ...extra }, 'connection refused');
    socket.on('error', () => {});
    socket.destroy();
  }

  #accept(socket: net.Socket): void {
    const address = normalizeAddress(socket.remoteAddress ?? '');
    if (this.#closing) return this.#refuse(socket, address, 'shutting_down');
    const ban = this.bans.find(address);
    if (ban) return this.#refuse(socket, address, 'banned', { ban: ban.subnet, until: new Date(ban.until).toISOString() });
    const limited = this.#limits.check(address);
    if (limited) return this.#refuse(socket, address, limited);
    this.#limits.acquire(address);
    this.#pending.add(socket);
    socket.on('error', () => {}); // until the session owns it; errors surface as close below

    const { host, port } = this.settings.backend;
    // bitcoind → peer carries the bulk (blocks): read it into one reused buffer (see LendingReadBuffer)
    const readBuffer = new LendingReadBuffer();
    let deliver: ((chunk: Buffer) => void) | null = null;
    const early: Buffer[] = [];
    const backend = net.connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: readBuffer.next,
        callback: (n, buf) => {
          const chunk = (buf as Buffer).subarray(0, n);
          if (deliver) deliver(chunk);
          else early.push(Buffer.from(chunk)); // before the session exists: keep a copy
          return true; // backpressure is the session's pause()/resume()
        },
      },
    });
    const timer = setTimeout(() => backend.destroy(new Error(`connect timeout after ${this.settings.backendConnectTimeout} ms`)), this.settings.backendConnectTimeout);
    const fail = (err: Error) => {
      clearTimeout(timer);
      this.#pending.delete(socket);
      this.#limits.release(address);
      this.observer.backendConnectFailed();
      if (this.#backendUp !== false) this.log.error({ backend: `${host}:${port}`, err: err.message }, 'backend unreachable: refusing peers until it is back');
      this.#backendUp = false;
      this.#refuse(socket, address, 'backend_down', { err: err.message });
    };
    backend.once('error', fail);
    backend.once('connect', () => {
      clearTimeout(timer);
      backend.off('error', fail);
      this.#pending.delete(socket);
      if (this.#backendUp === false) this.log.info({ backend: `${host}:${port}` }, 'backend reachable again');
      this.#backendUp = true;
      if (socket.destroyed || this.#closing) {
        this.#limits.release(address);
        backend.destroy();
        socket.destroy();
        return;
      }
      const session = new PeerSession(this.#nextId++, socket, backend, address, this.settings, this, readBuffer);
      deliver = (chunk) => session.onBackendRead(chunk);
      this.#sessions.set(session.info.id, session);
      this.observer.connectionAccepted();
      this.observer.sessionOpened();
      session.log.info({ backendLocalPort: backend.localPort }, 'peer connected');
      session.start();
      for (const chunk of early.splice(0)) session.onBackendRead(chunk);
    });
  }

  sessionEnded(session: PeerSession, reason: CloseReason): void {
    if (!this.#sessions.delete(session.info.id)) return;
    this.#limits.release(session.address);
    const seconds = (Date.now() - session.info.connectedAt) / 1000;
    this.observer.sessionClosed(reason, seconds);
    session.log.info({ reason, seconds: Math.round(seconds * 1000) / 1000, bytesIn: session.info.bytesIn, bytesOut: session.info.bytesOut }, 'peer disconnected');
    if (reason === 'backend_closed' && !this.#closing && this.#backendDisconnects.record(session.address)) {
      const bd = this.settings.backendDisconnects;
      this.ban(session.address, bd.duration, `bitcoind disconnected it ${bd.count} times within ${bd.window / 1000}s`, 'backend_disconnects');
    }
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

  peers(): HookPeer[] {
    return this.sessions().map((s) => s.hookPeer);
  }

  send(peerId: number, message: OutgoingMessage): boolean {
    return this.#sessions.get(peerId)?.sendMessage(message) ?? false;
  }

  disconnect(peerId: number, reason: string): void {
    const s = this.#sessions.get(peerId);
    if (!s) return;
    s.log.info({ reason }, 'disconnected by a hook');
    s.close('hook');
  }

  misbehave(peerId: number, points: number, reason: string): void {
    this.#sessions.get(peerId)?.addMisbehaviour(points, reason);
  }

  /** Ban an address or subnet and disconnect every session it covers. */
  ban(subnet: string, durationMs: number, reason: string, kind = 'admin'): Ban | null {
    const ban = this.bans.add(subnet, durationMs, reason);
    if (!ban) return null;
    this.observer.banAdded(kind);
    this.observer.bansCurrent(this.bans.size);
    this.log.warn({ ban: ban.subnet, until: new Date(ban.until).toISOString(), reason }, 'banned');
    const parsed = parseSubnet(ban.subnet)!;
    for (const s of this.#sessions.values()) if (subnetContains(parsed, s.address)) s.close('banned');
    return ban;
  }

  unban(subnet: string): boolean {
    const removed = this.bans.remove(subnet);
    this.observer.bansCurrent(this.bans.size);
    return removed;
  }

  /** Stop accepting, close every session, save bans. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const closed = Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.#pending) s.destroy();
    for (const s of this.#sessions.values()) s.close('shutdown');
    await closed;
    await this.bans.save();
    this.log.info('proxy stopped');
  }
}
