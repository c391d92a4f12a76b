/**
 * A tiny raw P2P client for tests, built on our own codec (buildFrame / FrameDecoder): connect,
 * version/verack handshake, send any frame or raw bytes, wait for a command, ping/pong.
 * It keeps a copy of every frame received, so tests can look back at what came in.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import {
  FrameDecoder,
  NETWORKS,
  buildFrame,
  decodeMessage,
  encodeFrame,
  type Frame,
  type FrameError,
  type KnownCommand,
  type MessageTypes,
  type Network,
  type VersionMessage,
} from '../../src/codec/index.js';

export interface P2PClientOptions {
  host?: string;
  /** source address to connect from, e.g. 127.0.0.7 (Linux routes all of 127/8 to loopback) */
  localAddress?: string;
  network?: Network;
  /** do not start reading from the socket (a peer that never reads) */
  paused?: boolean;
  userAgent?: string;
  connectTimeoutMs?: number;
}

const LOOPBACK_V4_MAPPED = Buffer.from('00000000000000000000ffff7f000001', 'hex');

export class P2PClient {
  readonly frames: Frame[] = [];
  readonly errors: FrameError[] = [];
  readonly network: Network;
  readonly userAgent: string;
  /** resolves when the socket has closed, for whatever reason */
  readonly closed: Promise<void>;
  #isClosed = false;
  #closeError: Error | null = null;
  readonly #decoder: FrameDecoder;
  readonly #waiters = new Set<() => void>();

  private constructor(
    readonly socket: net.Socket,
    options: P2PClientOptions,
  ) {
    this.network = options.network ?? NETWORKS.regtest;
    this.userAgent = options.userAgent ?? '/bhp-test-client:0.1/';
    this.#decoder = new FrameDecoder(
      { network: this.network, checksum: 'always' },
      {
        onFrame: (f) => {
          this.frames.push(f.copy());
          this.#wake();
        },
        onError: (e) => {
          this.errors.push(e);
          this.#wake();
        },
      },
    );
    socket.on('data', (chunk: Buffer) => this.#decoder.push(chunk));
    socket.on('error', (err) => (this.#closeError = err));
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.#isClosed = true;
        this.#wake();
        resolve();
      });
    });
    if (options.paused) socket.pause();
  }

  /** Open a TCP connection to host:port and wrap it. */
  static connect(port: number, options: P2PClientOptions = {}): Promise<P2PClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: options.host ?? '127.0.0.1', port, noDelay: true, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
      const timer = setTimeout(() => socket.destroy(new Error(`connect to ${port} timed out`)), options.connectTimeoutMs ?? 5000);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new P2PClient(socket, options));
      });
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  get closeError(): Error | null {
    return this.#closeError;
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Send a frame built with our codec. */
  send<C extends KnownCommand>(command: C, value: MessageTypes[C]): boolean {
    return this.sendRaw(buildFrame(this.network, command, value).raw);
  }

  /** Send bytes as they are (bad frames, garbage). Returns socket.write's answer. */
  sendRaw(bytes: Uint8Array): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(bytes);
  }

  /** A version message like a modern node sends, addressed to 127.0.0.1. */
  versionMessage(overrides: Partial<VersionMessage> = {}): VersionMessage {
    return {
      version: 70016,
      services: 0x409n,
      timestamp: BigInt(Math.floor(Date.now() / 1000)),
      addrRecv: { services: 0n, ip: LOOPBACK_V4_MAPPED, port: 0 },
      addrFrom: { services: 0x409n, ip: Buffer.alloc(16), port: 0 },
      nonce: randomBytes(8).readBigUInt64LE(0),
      userAgent: this.userAgent,
      startHeight: 0,
      relay: true,
      ...overrides,
    };
  }

  /**
   * Wait for the next frame with `command` (and `match`, if given) that arrived at index
   * `from` or later. Rejects when the socket closes first or after `timeoutMs`.
   */
  waitFor(command: string, timeoutMs = 10_000, match: (f: Frame) => boolean = () => true, from = 0): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        for (let i = from; i < this.frames.length; i++) {
          const f = this.frames[i]!;
          if (f.command === command && match(f)) {
            done();
            resolve(f);
            return true;
          }
        }
        if (this.#isClosed) {
          done();
          reject(new Error(`connection closed before a "${command}" arrived (got: ${this.frames.map((f) => f.command).join(',')})`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no "${command}" within ${timeoutMs} ms (got: ${this.frames.map((f) => f.command).join(',')})`));
      }, timeoutMs);
      const waiter = () => void check();
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      this.#waiters.add(waiter);
      check();
    });
  }

  /** version → (version, verack) ← verack →. Returns the version message the other side sent. */
  async handshake(timeoutMs = 10_000, overrides: Partial<VersionMessage> = {}): Promise<VersionMessage> {
    this.send('version', this.versionMessage(overrides));
    const theirs = await this.waitFor('version', timeoutMs);
    this.send('verack', {});
    await this.waitFor('verack', timeoutMs);
    return decodeMessage('version', theirs.payload);
  }

  /** Send a ping with a fresh nonce and wait for the pong that carries it; returns the round trip in ms. */
  async ping(timeoutMs = 5000): Promise<number> {
    const nonce = randomBytes(8).readBigUInt64LE(0);
    const start = performance.now();
    const from = this.frames.length;
    this.send('ping', { nonce });
    await this.waitFor('pong', timeoutMs, (f) => decodeMessage('pong', f.payload).nonce === nonce, from);
    return performance.now() - start;
  }

  /** Resolve true when the socket closes within `timeoutMs`, false otherwise. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      this.closed.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return result;
  }

  /** Destroy the socket and wait until it is closed. */
  async close(): Promise<void> {
    this.socket.destroy();
    await this.closed;
  }
}

/** A frame with a correct header for `network` but a wrong checksum. */
export function badChecksumFrame(network: Network, command: string, payload: Buffer): Buffer {
  const raw = Buffer.from(encodeFrame(network, command, payload).raw);
  raw[20] = raw[20]! ^ 0xff;
  return raw;
}

/** A bare 24-byte header that declares `length` payload bytes (with a meaningless checksum). */
export function headerDeclaring(network: Network, command: string, length: number): Buffer {
  const raw = Buffer.from(encodeFrame(network, command, Buffer.alloc(0)).raw);
  raw.writeUInt32LE(length >>> 0, 16);
  return raw;
}

/** A source address in 127.0.0.0/8 for the n-th distinct test peer (Linux routes all of it to loopback). */
export function loopbackAddress(n: number): string {
  return `127.0.${Math.floor(n / 250)}.${(n % 250) + 2}`;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/**
 * One HTTP request to 127.0.0.1:port (admin API, metrics), body as JSON when given;
 * `rawBody` is sent as is (bad JSON), `headers` are added last (a custom authorization).
 */
export async function httpRequest(
  port: number,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.rawBody;
  Object.assign(headers, options.headers);
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, body, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON (metrics text) */
  }
  return { status: res.status, headers: Object.fromEntries(res.headers.entries()), text, json };
}
