/**
 * The SOCKS5 front for our own node's outbound connections (bitcoind's `-proxy=`). RFC 1928:
 * "no authentication" and username/password (RFC 1929, any credentials accepted: bitcoind's
 * -proxyrandomize sends random ones per connection for Tor stream isolation), CONNECT only, to
 * IPv4, IPv6 and domain names; every other command or address type gets its reply code. Onion
 * and I2P names are refused (address type not supported) unless an upstream SOCKS5 proxy is
 * configured, then everything is chained through it.
 *
 * Each accepted CONNECT becomes an OutboundSession: the same pipeline, bounds and hook chain as
 * an inbound peer, with the remote as the peer and our node where bitcoind usually is. The
 * destination as our node asked for it is in `peer.state` under `socks.destination`.
 */
import * as net from 'node:net';
import type { Logger } from 'pino';
import type { OutgoingMessage } from '../../hooks/api.js';
import type { HookChain } from '../../hooks/chain.js';
import { normalizeAddress } from '../address.js';
import { nullObserver, type CloseReason, type ProxyObserver, type SocksCounts } from '../observer.js';
import { OutboundSession } from '../outbound-session.js';
import type { PeerSession, SessionHost, SessionSettings } from '../peer-session.js';
import { CMD, METHOD, REPLY, SocksProtocolError, encodeReply, isPrivacyNetworkName, parseGreeting, parseRequest, parseUserPass, replyForError, replyName, type ReplyCode, type SocksRequest } from './protocol.js';
import { UpstreamError, connectVia, type Upstream } from './upstream.js';

/** bytes of a negotiation kept at most: above the longest legal one, a bound on junk */
const NEGOTIATION_MAX = 2048;
import { listenOn } from '../listen.js';

/** peer.state key: "host:port" as our node asked for it (a name stays a name) */
export const STATE_DESTINATION = 'socks.destination';

export interface SocksSettings {
  listen: { host: string; port: number }[];
  /** chain every connection through this SOCKS5 proxy (required for onion and I2P) */
  upstream: Upstream | null;
  /** connections negotiating or relaying at once */
  maxConnections: number;
  /** ms for a client to finish its greeting and request */
  negotiateTimeout: number;
  /** ms to reach the destination (or the upstream's answer) */
  connectTimeout: number;
}

export interface SocksServerOptions {
  settings: SocksSettings;
  /** the session settings (bounds, timeouts) of the moment */
  session: () => SessionSettings;
  /** the hook chain outbound sessions run */
  chain: () => HookChain;
  log: Logger;
  observer?: ProxyObserver;
  /** first session id; kept apart from inbound ids, which hooks key per-peer state by */
  firstId?: number;
}

export type { SocksCounts };

export class SocksServer implements SessionHost {
  readonly log: Logger;
  readonly observer: ProxyObserver;
  readonly counts: SocksCounts = { accepted: 0, overLimit: 0, refused: new Map(), protocolErrors: 0, sessions: 0, methods: { none: 0, userpass: 0 } };
  readonly #servers: net.Server[] = [];
  readonly #negotiating = new Set<net.Socket>();
  readonly #sessions = new Map<number, OutboundSession>();
  #nextId: number;
  #closing = false;

  constructor(private readonly o: SocksServerOptions) {
    this.log = o.log.child({ socks: true });
    this.observer = o.observer ?? nullObserver;
    this.observer.socksCounts?.(this.counts);
    this.#nextId = o.firstId ?? 1_000_000_000;
  }

  get chain(): HookChain {
    return this.o.chain();
  }

  addresses(): { host: string; port: number }[] {
    return this.#servers.map((s) => {
      const a = s.address() as net.AddressInfo;
      return { host: a.address, port: a.port };
    });
  }

  sessions(): PeerSession[] {
    return [...this.#sessions.values()];
  }

  async listen(): Promise<void> {
    for (const ep of this.o.settings.listen) {
      const server = net.createServer({ noDelay: true }, (s) => this.#accept(s));
      server.on('error', (err) => this.log.error({ err: err.message }, 'SOCKS listener error'));
      const a = await listenOn(server, ep);
      this.#servers.push(server);
      this.log.info({ listen: `${a.address}:${a.port}`, upstream: this.o.settings.upstream ? `${this.o.settings.upstream.host}:${this.o.settings.upstream.port}` : null }, 'SOCKS5 listening for our node\'s outbound connections');
    }
  }

  #refuse(socket: net.Socket, code: ReplyCode, why: string, fields: Record<string, unknown> = {}): void {
    const name = replyName(code);
    this.counts.refused.set(name, (this.counts.refused.get(name) ?? 0) + 1);
    this.log.info({ reply: code, why, ...fields }, 'SOCKS request refused');
    if (!socket.destroyed) socket.end(encodeReply(code));
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  #accept(socket: net.Socket): void {
    socket.on('error', () => {});
    if (this.#closing || this.#negotiating.size + this.#sessions.size >= this.o.settings.maxConnections) {
      this.counts.overLimit++;
      this.log.info({ connections: this.#negotiating.size + this.#sessions.size }, 'SOCKS connection refused: at maxConnections');
      socket.destroy();
      return;
    }
    this.counts.accepted++;
    this.#negotiating.add(socket);
    let buf: Buffer = Buffer.alloc(0);
    let stage: 'greeting' | 'auth' | 'request' | 'connecting' = 'greeting';
    let auth: { user: string; password: string } | undefined;
    const timer = setTimeout(() => {
      this.counts.protocolErrors++;
      this.log.info({ stage }, 'SOCKS client too slow to negotiate: closed');
      done();
      socket.destroy();
    }, this.o.settings.negotiateTimeout);
    const done = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      this.#negotiating.delete(socket);
    };
    socket.once('close', done);
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      // nothing legitimate is longer (greeting 257 + RFC 1929 auth 513 + request 262 = 1,032 bytes in one write); the parsers then fail or finish
      if (buf.length > NEGOTIATION_MAX) buf = buf.subarray(0, NEGOTIATION_MAX);
      try {
        if (stage === 'greeting') {
          const g = parseGreeting(buf);
          if (!g) return;
          buf = buf.subarray(g.used);
          // username/password when offered: bitcoind then isolates streams by it, and it is the path its -proxyrandomize takes
          const method = g.methods.includes(METHOD.userpass) ? METHOD.userpass : g.methods.includes(METHOD.none) ? METHOD.none : METHOD.unacceptable;
          socket.write(Buffer.from([5, method]));
          if (method === METHOD.unacceptable) {
            this.counts.protocolErrors++;
            done();
            socket.end();
            return;
          }
          this.counts.methods[method === METHOD.userpass ? 'userpass' : 'none']++;
          stage = method === METHOD.userpass ? 'auth' : 'request';
        }
        if (stage === 'auth') {
          const a = parseUserPass(buf);
          if (!a) return;
          buf = buf.subarray(a.used);
          auth = { user: a.user, password: a.password };
          socket.write(Buffer.from([1, 0])); // any credentials: they only tag the stream
          stage = 'request';
        }
        if (stage === 'request') {
          const r = parseRequest(buf);
          if (!r) return;
          stage = 'connecting';
          const rest = buf.subarray(r.used);
          done();
          socket.pause();
          if (rest.length) socket.unshift(rest);
          this.#request(socket, r, auth);
        }
      } catch (e) {
        this.counts.protocolErrors++;
        done();
        if (e instanceof SocksProtocolError && e.reply !== null) this.#refuse(socket, e.reply, e.message);
        else {
          this.log.info({ err: (e as Error).message }, 'SOCKS protocol error: closed');
          socket.destroy();
        }
      }
    };
    socket.on('data', onData);
  }

  #request(node: net.Socket, r: SocksRequest, auth: { user: string; password: string } | undefined): void {
    const dest = `${r.host.includes(':') ? `[${r.host}]` : r.host}:${r.port}`;
    if (r.command !== CMD.connect) return this.#refuse(node, REPLY.commandNotSupported, `command ${r.command} (only CONNECT)`, { dest });
    const up = this.o.settings.upstream;
    if (!up && isPrivacyNetworkName(r.host)) return this.#refuse(node, REPLY.addressTypeNotSupported, 'an onion or I2P address needs an upstream SOCKS proxy (outbound.upstream)', { dest });
    if (r.port === 0) return this.#refuse(node, REPLY.hostUnreachable, 'port 0', { dest });
    const timeout = this.o.settings.connectTimeout;
    this.#negotiating.add(node);
    const connected = up ? connectVia(up, r.host, r.port, timeout, auth) : direct(r.host, r.port, timeout);
    connected.then(
      (remote) => {
        this.#negotiating.delete(node);
        if (node.destroyed || this.#closing) {
          remote.destroy();
          return;
        }
        node.write(encodeReply(REPLY.succeeded, normalizeAddress(remote.localAddress ?? '0.0.0.0'), remote.localPort ?? 0));
        this.#startSession(node, remote, r, dest);
      },
      (err: Error) => {
        this.#negotiating.delete(node);
        const code = err instanceof UpstreamError ? (err.reply as ReplyCode) : replyForError(err as NodeJS.ErrnoException);
        this.#refuse(node, code, err.message, { dest });
      },
    );
  }

  #startSession(node: net.Socket, remote: net.Socket, r: SocksRequest, dest: string): void {
    const address = this.o.settings.upstream ? r.host : normalizeAddress(remote.remoteAddress ?? r.host);
    const session = new OutboundSession(this.#nextId++, node, remote, address, this.o.session(), this);
    session.info.state.set(STATE_DESTINATION, dest);
    this.#sessions.set(session.info.id, session);
    this.counts.sessions++;
    this.observer.sessionOpened();
    session.log.info({ dest }, 'outbound connection of our node');
    session.start();
  }

  // SessionHost

  sessionEnded(session: PeerSession, reason: CloseReason): void {
    if (!this.#sessions.delete(session.info.id)) return;
    const seconds = (Date.now() - session.info.connectedAt) / 1000;
    this.observer.sessionClosed(reason, seconds);
    session.log.info({ reason, seconds: Math.round(seconds * 1000) / 1000, bytesIn: session.info.bytesIn, bytesOut: session.info.bytesOut }, 'outbound connection closed');
  }

  /** A remote our node chose: its score is logged; our node decides whether to keep it. */
  misbehaving(session: PeerSession, points: number, reason: string): void {
    this.observer.misbehaviour(reason);
    session.log.info({ points, score: session.info.misbehaviour, reason }, 'misbehaviour (outbound peer)');
  }

  /** Our node dialled it: a hook's ban closes this connection; the ban list is for inbound peers. */
  banSession(session: PeerSession, reason: string): void {
    session.log.warn({ reason }, 'outbound peer closed by a hook\'s ban');
    session.close('banned');
  }

  /** For the outbound chain's hook context: send to one of our outbound sessions. */
  send(peerId: number, message: OutgoingMessage): boolean {
    return this.#sessions.get(peerId)?.sendMessage(message) ?? false;
  }

  disconnect(peerId: number, reason: string): void {
    const s = this.#sessions.get(peerId);
    if (!s) return;
    s.log.info({ reason }, 'disconnected by a hook');
    s.close('hook');
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const closed = Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.#negotiating) s.destroy();
    for (const s of this.#sessions.values()) s.close('shutdown');
    await closed;
  }
}

function direct(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => s.destroy(Object.assign(new Error(`connect to ${host}:${port} timed out`), { code: 'ETIMEDOUT' })), timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      s.pause();
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
