import { randomBytes, randomInt } from 'node:crypto';
import * as net from 'node:net';
import { MAX_GARBAGE_LEN, newEphemeralKey, type EphemeralKey } from './cipher.js';

/** What an initiator sent before its session existed: the session's V2Connection goes on from it. */
export interface V2Opening {
  key: EphemeralKey;
  garbage: Buffer;
}

export interface DialResult {
  socket: net.Socket;
  /** set when the link speaks v2; null when it fell back to v1 (or v1 was asked) */
  v2: V2Opening | null;
}

export interface DialOptions {
  host: string;
  port: number;
  /** open with BIP324 v2 (the remote advertised NODE_P2P_V2) */
  v2: boolean;
  /** how long to wait for the connection and, for v2, the first answer */
  timeoutMs: number;
}

/**
 * Connect to a peer for our node. With `v2`, send our key and garbage and wait for the first
 * answer; if the peer closes before sending anything, reconnect and speak v1, as Bitcoin Core
 * does (V2Transport::ShouldReconnectV1: an outbound v2 attempt that received nothing). The
 * socket comes back paused with any bytes received put back, for the session to read.
 */
export async function dialPeer(o: DialOptions): Promise<DialResult> {
  if (!o.v2) return { socket: await connect(o), v2: null };
  const socket = await connect(o);
  const opening: V2Opening = { key: newEphemeralKey(), garbage: randomBytes(randomInt(MAX_GARBAGE_LEN + 1)) };
  socket.write(Buffer.concat([opening.key.ellswift, opening.garbage]));
  const answered = await new Promise<boolean>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no answer to the v2 opening within ${o.timeoutMs} ms`)), o.timeoutMs);
    const onData = (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      done(true);
    };
    const onClose = () => done(false);
    const done = (r: boolean | Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('end', onClose);
      socket.off('error', onClose);
      if (r instanceof Error) {
        socket.destroy();
        reject(r);
      } else resolve(r);
    };
    socket.on('data', onData);
    socket.resume();
    socket.once('end', onClose);
    socket.once('close', onClose);
    socket.once('error', onClose);
  });
  if (answered) return { socket, v2: opening };
  socket.destroy();
  return { socket: await connect(o), v2: null };
}

function connect(o: DialOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: o.host, port: o.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect to ${o.host}:${o.port} timed out`));
    }, o.timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', onError);
      s.pause();
      resolve(s);
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    s.once('error', onError);
  });
}
