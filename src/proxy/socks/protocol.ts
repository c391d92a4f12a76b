/**
 * SOCKS5 (RFC 1928) and its username/password method (RFC 1929), the parts a CONNECT-only
 * server and client need: the method greeting, the request, the reply. Parsers take what has
 * arrived so far and say "need more" with null, so the server never waits on a fixed read size.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export const SOCKS_VERSION = 5;
export const METHOD = { none: 0x00, userpass: 0x02, unacceptable: 0xff } as const;
export const CMD = { connect: 0x01, bind: 0x02, udpAssociate: 0x03 } as const;
export const ATYP = { ipv4: 0x01, domain: 0x03, ipv6: 0x04 } as const;

/** RFC 1928 §6 reply codes. */
export const REPLY = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;
export type ReplyCode = (typeof REPLY)[keyof typeof REPLY];

const REPLY_NAMES = new Map<number, string>(Object.entries(REPLY).map(([name, code]) => [code, name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)]));

/** A reply code as a metric label: generalFailure -> general_failure */
export function replyName(code: number): string {
  return REPLY_NAMES.get(code) ?? String(code);
}

export class SocksProtocolError extends Error {
  constructor(
    message: string,
    /** the reply to send before closing, when the request got far enough for one */
    readonly reply: ReplyCode | null = null,
  ) {
    super(message);
    this.name = 'SocksProtocolError';
  }
}

/** VER NMETHODS METHODS…: the methods offered, and the bytes it took; null until whole. */
export function parseGreeting(b: Buffer): { methods: number[]; used: number } | null {
  if (b.length < 2) return null;
  if (b[0] !== SOCKS_VERSION) throw new SocksProtocolError(`not SOCKS5 (version byte ${b[0]})`);
  const n = b[1]!;
  if (n === 0) throw new SocksProtocolError('no authentication method offered');
  if (b.length < 2 + n) return null;
  return { methods: [...b.subarray(2, 2 + n)], used: 2 + n };
}

/** RFC 1929: VER(1) ULEN UNAME PLEN PASSWD; null until whole. */
export function parseUserPass(b: Buffer): { user: string; password: string; used: number } | null {
  if (b.length < 2) return null;
  if (b[0] !== 0x01) throw new SocksProtocolError(`username/password subnegotiation version ${b[0]} is not 1`);
  const ulen = b[1]!;
  if (b.length < 3 + ulen) return null;
  const plen = b[2 + ulen]!;
  if (b.length < 3 + ulen + plen) return null;
  return { user: b.subarray(2, 2 + ulen).toString('latin1'), password: b.subarray(3 + ulen, 3 + ulen + plen).toString('latin1'), used: 3 + ulen + plen };
}

export interface SocksRequest {
  command: number;
  /** an IPv4 or IPv6 address, or a domain name */
  host: string;
  port: number;
  atyp: number;
  used: number;
}

/** VER CMD RSV ATYP DST.ADDR DST.PORT; null until whole. An unknown ATYP cannot be sized: reply 0x08. */
export function parseRequest(b: Buffer): SocksRequest | null {
  if (b.length < 5) return null;
  if (b[0] !== SOCKS_VERSION) throw new SocksProtocolError(`request version byte ${b[0]} is not 5`, REPLY.generalFailure);
  const command = b[1]!;
  const atyp = b[3]!;
  let host: string;
  let at: number;
  if (atyp === ATYP.ipv4) {
    if (b.length < 10) return null;
    host = [...b.subarray(4, 8)].join('.');
    at = 8;
  } else if (atyp === ATYP.ipv6) {
    if (b.length < 22) return null;
    host = ipaddr.fromByteArray([...b.subarray(4, 20)]).toString();
    at = 20;
  } else if (atyp === ATYP.domain) {
    const len = b[4]!;
    if (len === 0) throw new SocksProtocolError('empty domain name', REPLY.generalFailure);
    if (b.length < 5 + len + 2) return null;
    host = b.subarray(5, 5 + len).toString('latin1');
    at = 5 + len;
    if (!/^[A-Za-z0-9._-]+$/.test(host)) throw new SocksProtocolError(`domain name with characters no host name has: ${JSON.stringify(host)}`, REPLY.hostUnreachable);
  } else {
    throw new SocksProtocolError(`address type ${atyp} is not one of 1, 3, 4`, REPLY.addressTypeNotSupported);
  }
  return { command, host, port: b.readUInt16BE(at), atyp, used: at + 2 };
}

/** VER REP RSV ATYP BND.ADDR BND.PORT, bound to `host` (an IP; 0.0.0.0 when unknown). */
export function encodeReply(code: ReplyCode, host = '0.0.0.0', port = 0): Buffer {
  const v = isIP(host);
  if (v === 6) {
    const b = Buffer.alloc(22);
    b.set([SOCKS_VERSION, code, 0, ATYP.ipv6]);
    ipv6Bytes(host).copy(b, 4);
    b.writeUInt16BE(port, 20);
    return b;
  }
  const b = Buffer.alloc(10);
  b.set([SOCKS_VERSION, code, 0, ATYP.ipv4]);
  if (v === 4) b.set(host.split('.').map(Number), 4);
  b.writeUInt16BE(port, 8);
  return b;
}

/** A request for `host:port` (a domain name unless it is an IP literal). */
export function encodeRequest(host: string, port: number): Buffer {
  const v = isIP(host);
  const head = Buffer.from([SOCKS_VERSION, CMD.connect, 0]);
  let addr: Buffer;
  if (v === 4) addr = Buffer.from([ATYP.ipv4, ...host.split('.').map(Number)]);
  else if (v === 6) addr = Buffer.concat([Buffer.from([ATYP.ipv6]), ipv6Bytes(host)]);
  else {
    if (host.length > 255) throw new SocksProtocolError(`host name longer than 255 bytes: ${host.slice(0, 40)}…`);
    addr = Buffer.concat([Buffer.from([ATYP.domain, host.length]), Buffer.from(host, 'latin1')]);
  }
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  return Buffer.concat([head, addr, p]);
}

/** A reply's code and its length; null until whole. */
export function parseReply(b: Buffer): { code: number; used: number } | null {
  if (b.length < 5) return null;
  if (b[0] !== SOCKS_VERSION) throw new SocksProtocolError(`reply version byte ${b[0]} is not 5`);
  const atyp = b[3];
  const len = atyp === ATYP.ipv4 ? 10 : atyp === ATYP.ipv6 ? 22 : atyp === ATYP.domain ? 7 + b[4]! : -1;
  if (len < 0) throw new SocksProtocolError(`reply address type ${atyp} is unknown`);
  return b.length < len ? null : { code: b[1]!, used: len };
}

function ipv6Bytes(host: string): Buffer {
  return Buffer.from(ipaddr.IPv6.parse(host).toByteArray());
}

/** Onion and I2P names cannot be reached without their own network's proxy. */
export const isPrivacyNetworkName = (host: string): boolean => /\.(onion|i2p)\.?$/i.test(host);

/** What a failed connect means as a reply code. */
export function replyForError(err: NodeJS.ErrnoException): ReplyCode {
  switch (err.code) {
    case 'ECONNREFUSED':
      return REPLY.connectionRefused;
    case 'ENETUNREACH':
      return REPLY.networkUnreachable;
    case 'EHOSTUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return REPLY.hostUnreachable;
    case 'ETIMEDOUT':
      return REPLY.ttlExpired;
    default:
      return REPLY.generalFailure;
  }
}
