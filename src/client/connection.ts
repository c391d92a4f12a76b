/**
 * The client's own P2P connection to a node behind bitcoin-hook-proxy, as docs/x-protocol.md §7
 * tells a client to behave: send `version` (70017), read the node's, announce the x: feature
 * (BIP 434) if it says 70017+, send `verack`, note the proxy's `feature` between its version and
 * verack, wait for its verack. Then x: requests go out and their answers come back by nonce.
 * Pings are answered, everything else the node sends is read and ignored.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { FrameDecoder, NETWORKS, buildFrame, decodeMessage, encodeFrame, type Frame, type Network, type VersionMessage } from '../codec/index.js';
import { BuyerError } from './errors.js';
import { CMD, X_FEATURE, decodeHello, encodeHelloRequest, parseFeatureData, type Hello } from './protocol.js';
import { XRequests } from './requests.js';
import { SellerClient } from './seller.js';
import { sellerId } from './wallet.js';

export const CLIENT_PROTOCOL_VERSION = 70017;
const ANSWERS = new Set<string>([CMD.offers, CMD.invoice, CMD.grant, CMD.balance, CMD.refuse, 'x:hello']);

export interface ConnectOptions {
  host: string;
  port: number;
  /** the node's network (default mainnet) */
  network?: Network;
  /** ms for the TCP connection and the handshake (default 15 000) */
  timeoutMs?: number;
  /** ms to wait for each answer (default 30 000) */
  requestTimeoutMs?: number;
  userAgent?: string;
  /** throw `no_x_feature` when the proxy announces no x: feature (default true) */
  requireX?: boolean;
  /** an already connected socket to use instead of dialling host:port (e.g. through SOCKS5) */
  socket?: net.Socket;
}

const V4_MAPPED = (ip: string): Buffer => {
  const b = Buffer.alloc(16);
  const parts = ip.split('.').map(Number);
  if (parts.length === 4 && parts.every((n) => n >= 0 && n < 256)) {
    b[10] = 0xff;
    b[11] = 0xff;
    parts.forEach((n, i) => (b[12 + i] = n));
  }
  return b;
};

export class XConnection {
  /** the proxy's feature data (null: it announced no x: feature) */
  offered: { truncated: boolean; commands: string[] } | null = null;
  remoteVersion: VersionMessage | null = null;
  readonly requests: XRequests;
  readonly seller: SellerClient;
  /** unsolicited x:balance messages (nonce 0: the credit ran out) */
  onUnsolicited: ((command: string, payload: Buffer) => void) | null = null;
  #verack = false;
  /** we announced the x: feature (the remote's version said 70017+) */
  #announced = false;
  /** the proxy announced x: to us, but its version was too low for us to announce ours */
  #offeredUnusable = false;
  #handshakeWaiter: ((err?: BuyerError) => void) | null = null;
  readonly #decoder: FrameDecoder;

  private constructor(
    readonly socket: net.Socket,
    readonly network: Network,
    readonly host: string,
    readonly port: number,
    requestTimeoutMs: number,
  ) {
    this.requests = new XRequests((command, payload) => this.#sendX(command, payload), requestTimeoutMs);
    this.seller = new SellerClient(sellerId(host, port), this.requests);
    this.#decoder = new FrameDecoder({ network, checksum: 'always' }, {
      onFrame: (f) => this.#onFrame(f),
      onError: (e) => {
        if (e.code === 'BAD_MAGIC' || e.code === 'OVERSIZED') this.#fail(new BuyerError('handshake_failed', `the remote does not speak ${network.name}: ${e.message}`));
      },
    });
    socket.on('data', (c: Buffer) => this.#decoder.push(c));
    socket.on('close', () => this.#fail(new BuyerError('closed', `the connection to ${host}:${port} closed`)));
    socket.on('error', () => {});
  }

  static async connect(o: ConnectOptions): Promise<XConnection> {
    const network = o.network ?? NETWORKS.mainnet;
    const timeoutMs = o.timeoutMs ?? 15_000;
    const socket = o.socket ?? (await dial(o.host, o.port, timeoutMs));
    const c = new XConnection(socket, network, o.host, o.port, o.requestTimeoutMs ?? 30_000);
    try {
      await c.#handshake(o, timeoutMs);
    } catch (e) {
      c.close();
      throw e;
    }
    if (o.requireX !== false && !c.offered) {
      c.close();
      throw new BuyerError(
        'no_x_feature',
        c.#offeredUnusable
          ? `${o.host}:${o.port} is a bitcoin-hook-proxy announcing ${X_FEATURE}, but its version says ${c.remoteVersion?.version}, below 70017, so we may not announce the feature (BIP 434) and it answers no x: message: the node behind it needs protocol 70016 or later (Bitcoin Core 0.21+)`
          : `${o.host}:${o.port} announced no ${X_FEATURE} feature (its version says ${c.remoteVersion?.version})`,
      );
    }
    return c;
  }

  /** x:hello (docs/x-protocol.md §4.1): what the proxy runs. */
  async hello(): Promise<Hello> {
    const a = await this.requests.request('x:hello', encodeHelloRequest);
    try {
      return decodeHello(a.payload);
    } catch (e) {
      throw new BuyerError('malformed_answer', `x:hello: ${(e as Error).message}`);
    }
  }

  /** Does the proxy sell anything (a paywall module with x:offers)? */
  sells(): boolean {
    // a cut list (flag bit 0) may have lost x:offers: x:hello has them all
    return (this.offered?.commands.includes(CMD.offers) || this.offered?.truncated) ?? false;
  }

  close(): void {
    this.requests.fail(new BuyerError('closed', 'the connection was closed'));
    this.socket.destroy();
  }

  #send(frame: Frame): boolean {
    if (this.socket.destroyed) return false;
    this.socket.write(frame.raw);
    return true;
  }

  #sendX(command: string, payload: Buffer): boolean {
    if (!this.#verack || !this.offered) return false;
    return this.#send(encodeFrame(this.network, command, payload));
  }

  #handshake(o: ConnectOptions, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new BuyerError('timeout', `no handshake with ${o.host}:${o.port} within ${timeoutMs} ms`)), timeoutMs);
      this.#handshakeWaiter = (err) => {
        clearTimeout(timer);
        this.#handshakeWaiter = null;
        if (err) reject(err);
        else resolve();
      };
      const version: VersionMessage = {
        version: CLIENT_PROTOCOL_VERSION,
        services: 0n,
        timestamp: BigInt(Math.floor(Date.now() / 1000)),
        addrRecv: { services: 0n, ip: V4_MAPPED(this.socket.remoteAddress ?? ''), port: this.socket.remotePort ?? 0 },
        addrFrom: { services: 0n, ip: Buffer.alloc(16), port: 0 },
        nonce: randomBytes(8).readBigUInt64LE(0),
        userAgent: o.userAgent ?? '/bitcoin-hook-proxy-client:0.1.0/',
        startHeight: 0,
        relay: false,
      };
      this.#send(buildFrame(this.network, 'version', version));
    });
  }

  #onFrame(f: Frame): void {
    const cmd = f.command;
    if (cmd === 'version' && !this.remoteVersion) {
      try {
        this.remoteVersion = decodeMessage('version', f.payload);
      } catch (e) {
        return this.#fail(new BuyerError('handshake_failed', `unreadable version: ${(e as Error).message}`));
      }
      // BIP 434: announce only to a peer of 70017+, before our verack
      this.#announced = this.remoteVersion.version >= CLIENT_PROTOCOL_VERSION;
      if (this.#announced) this.#send(buildFrame(this.network, 'feature', { featureId: X_FEATURE, data: Buffer.alloc(0) }));
      this.#send(buildFrame(this.network, 'verack', {}));
    } else if (cmd === 'feature' && !this.#verack) {
      try {
        const m = decodeMessage('feature', f.payload);
        // without our own announcement the proxy answers no x: message (x-protocol.md §2.7):
        // x: requests would only time out
        if (m.featureId === X_FEATURE && this.#announced) this.offered = parseFeatureData(m.data);
        else if (m.featureId === X_FEATURE) this.#offeredUnusable = true;
      } catch {
        /* a feature we cannot read is one we ignore (BIP 434) */
      }
    } else if (cmd === 'verack' && this.remoteVersion && !this.#verack) {
      this.#verack = true;
      this.#handshakeWaiter?.();
    } else if (cmd === 'ping') {
      this.#send(encodeFrame(this.network, 'pong', f.payload.subarray(0, 8)));
    } else if (cmd.startsWith('x:') && ANSWERS.has(cmd)) {
      const payload = Buffer.from(f.payload);
      if (!this.requests.deliver(cmd, payload)) this.onUnsolicited?.(cmd, payload);
    }
  }

  #fail(err: BuyerError): void {
    // closed before the handshake finished: the remote did not take us for a peer of its network
    this.#handshakeWaiter?.(err.code === 'closed' ? new BuyerError('handshake_failed', `${this.host}:${this.port} closed the connection during the handshake (another network, or not a Bitcoin node?)`) : err);
    this.requests.fail(err);
    if (!this.socket.destroyed) this.socket.destroy();
  }
}

function dial(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => s.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(new BuyerError('unreachable', `cannot connect to ${host}:${port}: ${e.message}`));
    });
  });
}
