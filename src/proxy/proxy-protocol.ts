/**
 * The PROXY protocol (HAProxy's spec, v1 text and v2 binary) on connections from trusted load
 * balancers: the header before the peer's bytes names the real client, so bans and limits see
 * the peer and not the balancer. Framing and limits are ours (the header is read from a paused
 * socket; what follows it is put back for the session); the header itself is parsed by
 * proxy-protocol-js, then checked (address family, addresses, ports).
 */
import { createRequire } from 'node:module';
import * as net from 'node:net';

type ProxyProtocolJs = typeof import('proxy-protocol-js');
let lib: ProxyProtocolJs | null = null;
/** the parser, loaded by the first header (only a proxy behind a trusted load balancer reads one) */
const pp = (): ProxyProtocolJs => (lib ??= createRequire(import.meta.url)('proxy-protocol-js') as ProxyProtocolJs);
import { normalizeAddress } from './address.js';

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
/** v1: "PROXY TCP6 <39> <39> <5> <5>\r\n" is at most 107 bytes (spec §2.1) */
const V1_MAX = 107;
/** v2: 16-byte header plus addresses and TLVs; HAProxy's own TLVs stay far below this */
const V2_MAX = 16 + 2048;

export type ProxyHeader =
  /** a proxied connection from `address`:`port` */
  | { kind: 'proxy'; address: string; port: number; version: 1 | 2 }
  /** the balancer's own connection (health check): no client behind it */
  | { kind: 'local'; version: 1 | 2 };

export class ProxyHeaderError extends Error {
  override readonly name = 'ProxyHeaderError';
}

/** Does `data` start like a PROXY header (as far as it goes)? For refusing one from an untrusted source. */
export function looksLikeProxyHeader(data: Buffer): boolean {
  const n = Math.min(data.length, 12);
  return n > 0 && (data.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n)) || data.subarray(0, Math.min(n, 6)).equals(V1_PREFIX.subarray(0, Math.min(n, 6))));
}

/** Is `data` shorter than a PROXY signature and the start of one? Then its next bytes tell. */
export function mayStartProxyHeader(data: Buffer): boolean {
  return data.length < V2_SIGNATURE.length && looksLikeProxyHeader(data);
}

/**
 * How long the header in `data` is: 0 when more bytes are needed. Throws when `data` cannot
 * start a PROXY header or it is longer than the spec allows.
 */
export function headerLength(data: Buffer): number {
  if (!looksLikeProxyHeader(data)) throw new ProxyHeaderError('no PROXY protocol header from a trusted load balancer');
  if (data[0] === 0x0d) {
    if (data.length < 16) return 0;
    const len = 16 + data.readUInt16BE(14);
    if (len > V2_MAX) throw new ProxyHeaderError(`PROXY v2 header of ${len} bytes (at most ${V2_MAX})`);
    return data.length >= len ? len : 0;
  }
  const end = data.indexOf('\r\n');
  if (end < 0) {
    if (data.length >= V1_MAX) throw new ProxyHeaderError(`PROXY v1 header without CRLF within ${V1_MAX} bytes`);
    return 0;
  }
  if (end + 2 > V1_MAX) throw new ProxyHeaderError(`PROXY v1 header longer than ${V1_MAX} bytes`);
  return end + 2;
}

/** Parse one complete header (as headerLength() delimited it). */
export function parseHeader(header: Buffer): ProxyHeader {
  try {
    return header[0] === 0x0d ? parseV2(header) : parseV1(header);
  } catch (err) {
    if (err instanceof ProxyHeaderError) throw err;
    throw new ProxyHeaderError(`bad PROXY header: ${(err as Error).message}`);
  }
}

function parseV1(header: Buffer): ProxyHeader {
  const text = header.toString('latin1');
  if (/^PROXY UNKNOWN[ \r]/.test(text)) return { kind: 'local', version: 1 };
  const { V1ProxyProtocol, INETProtocol } = pp();
  const p = V1ProxyProtocol.parse(text);
  const family = p.inetProtocol === INETProtocol.TCP4 ? 4 : p.inetProtocol === INETProtocol.TCP6 ? 6 : 0;
  for (const peer of [p.source, p.destination]) {
    if (net.isIP(peer.ipAddress) !== family) throw new ProxyHeaderError(`PROXY v1: ${JSON.stringify(peer.ipAddress.slice(0, 50))} is not an IPv${family} address`);
    if (!(peer.port >= 0 && peer.port <= 65535)) throw new ProxyHeaderError(`PROXY v1: port ${peer.port} out of range`);
  }
  if (p.data) throw new ProxyHeaderError('PROXY v1: bytes after the header were parsed as part of it');
  return { kind: 'proxy', address: normalizeAddress(p.source.ipAddress), port: p.source.port, version: 1 };
}

function parseV2(header: Buffer): ProxyHeader {
  const { V2ProxyProtocol, Command, IPv4ProxyAddress, IPv6ProxyAddress } = pp();
  const p = V2ProxyProtocol.parse(new Uint8Array(header.buffer, header.byteOffset, header.length));
  if (p.command === Command.LOCAL) return { kind: 'local', version: 2 };
  const a = p.proxyAddress;
  if (a instanceof IPv4ProxyAddress) return { kind: 'proxy', address: a.sourceAddress.address.join('.'), port: a.sourcePort, version: 2 };
  if (a instanceof IPv6ProxyAddress) {
    const b = Buffer.from(a.sourceAddress.address);
    const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16));
    return { kind: 'proxy', address: normalizeAddress(groups.join(':')), port: a.sourcePort, version: 2 };
  }
  throw new ProxyHeaderError('PROXY v2: neither TCP over IPv4 nor IPv6 (unix or unspecified address family)');
}

/**
 * Read the header from a socket accepted with pauseOnConnect; the bytes after it are put back
 * (unshift) and the socket is paused again, so the session reads them first. `timeoutMs` 0: no limit.
 */
export function readProxyHeader(socket: net.Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (err: Error | null, header?: ProxyHeader, rest?: Buffer) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err) return reject(err);
      if (rest && rest.length) socket.unshift(rest);
      resolve(header!);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let len: number;
      try {
        len = headerLength(buf);
        if (len === 0) return;
        done(null, parseHeader(buf.subarray(0, len)), buf.subarray(len));
      } catch (err) {
        done(err as Error);
      }
    };
    const onClose = () => done(new ProxyHeaderError('closed before the PROXY header was complete'));
    // 0 is limits.handshakeTimeout switched off, as sessions take it: no deadline, not an instant one
    const timer = timeoutMs > 0 ? setTimeout(() => done(new ProxyHeaderError(`no complete PROXY header within ${timeoutMs} ms`)), timeoutMs) : undefined;
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  });
}
