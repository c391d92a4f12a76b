/**
 * The client side of SOCKS5 CONNECT, for chaining to an upstream proxy (Tor for onion addresses,
 * an I2P router's SOCKS port). Credentials, when given, use RFC 1929; passing on the ones our
 * node chose per connection keeps Tor's stream isolation (bitcoind's -proxyrandomize).
 */
import * as net from 'node:net';
import { METHOD, REPLY, SOCKS_VERSION, SocksProtocolError, encodeRequest, parseReply } from './protocol.js';

export interface Upstream {
  host: string;
  port: number;
}

export class UpstreamError extends Error {
  constructor(
    message: string,
    /** the upstream's reply code, passed on to our client; generalFailure when it had none */
    readonly reply: number,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

export function connectVia(up: Upstream, host: string, port: number, timeoutMs: number, auth?: { user: string; password: string }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: up.host, port: up.port, noDelay: true });
    let buf: Buffer = Buffer.alloc(0);
    let stage: 'method' | 'auth' | 'reply' = 'method';
    const fail = (e: Error) => {
      clearTimeout(timer);
      s.destroy();
      reject(e instanceof UpstreamError ? e : new UpstreamError(`upstream SOCKS5 ${up.host}:${up.port}: ${e.message}`, e instanceof SocksProtocolError ? REPLY.generalFailure : REPLY.networkUnreachable));
    };
    const timer = setTimeout(() => fail(new UpstreamError(`upstream SOCKS5 ${up.host}:${up.port}: no answer within ${timeoutMs} ms`, REPLY.ttlExpired)), timeoutMs);
    s.once('error', fail);
    s.once('connect', () => s.write(Buffer.from(auth ? [SOCKS_VERSION, 2, METHOD.none, METHOD.userpass] : [SOCKS_VERSION, 1, METHOD.none])));
    s.on('close', () => fail(new UpstreamError(`upstream SOCKS5 ${up.host}:${up.port} closed the connection`, REPLY.generalFailure)));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        if (stage === 'method') {
          if (buf.length < 2) return;
          const m = buf[1];
          buf = buf.subarray(2);
          if (m === METHOD.userpass && auth) {
            const u = Buffer.from(auth.user, 'latin1');
            const p = Buffer.from(auth.password, 'latin1');
            s.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
            stage = 'auth';
          } else if (m === METHOD.none) {
            s.write(encodeRequest(host, port));
            stage = 'reply';
          } else return fail(new UpstreamError(`upstream SOCKS5 ${up.host}:${up.port} accepts none of our methods`, REPLY.generalFailure));
        }
        if (stage === 'auth') {
          if (buf.length < 2) return;
          if (buf[1] !== 0) return fail(new UpstreamError(`upstream SOCKS5 ${up.host}:${up.port} refused the credentials`, REPLY.notAllowed));
          buf = buf.subarray(2);
          s.write(encodeRequest(host, port));
          stage = 'reply';
        }
        const r = parseReply(buf);
        if (!r) return;
        if (r.code !== REPLY.succeeded) return fail(new UpstreamError(`upstream SOCKS5 ${up.host}:${up.port} could not connect to ${host}:${port} (reply ${r.code})`, r.code));
        clearTimeout(timer);
        s.off('data', onData);
        s.removeAllListeners('close');
        s.removeAllListeners('error');
        s.pause();
        const rest = buf.subarray(r.used);
        if (rest.length) s.unshift(rest);
        resolve(s);
      } catch (e) {
        fail(e as Error);
      }
    };
    s.on('data', onData);
  });
}
