import * as net from 'node:net';
import type { LendingReadBuffer } from './lending-read-buffer.js';

/** The part of Node's socket internals this relies on (checked before use). */
interface HandleLike {
  readStart?: unknown;
  reading?: boolean;
}

/**
 * An accepted socket, read into `reads` (`onread`; the bytes go where reads.deliverTo says) instead of a fresh 64 KB Buffer per read.
 * net.Server has no `onread` option, so the accepted socket's handle is moved into a new
 * net.Socket that has one (what the shared bench's sink does). That handle is Node-internal:
 * when it is not what this expects (not yet reading, as with pauseOnConnect), null is
 * returned and the caller keeps the socket and its 'data' events.
 */
export function adoptWithReadBuffer(socket: net.Socket, reads: LendingReadBuffer): net.Socket | null {
  const s = socket as net.Socket & { _handle?: HandleLike | null };
  const handle = s._handle;
  if (!handle || typeof handle.readStart !== 'function' || handle.reading || socket.destroyed) return null;
  s._handle = null;
  const adopted = new net.Socket({
    handle,
    readable: true,
    writable: true,
    onread: { buffer: reads.next, callback: reads.callback },
  } as net.SocketConstructorOpts);
  socket.destroy(); // the old wrapper has no handle now: this only settles the server's connection count
  return adopted;
}

/** A connection whose reads go through `reads` (to its target once set: see LendingReadBuffer.deliverTo). */
export function connectWithReadBuffer(host: string, port: number, reads: LendingReadBuffer): net.Socket {
  return net.connect({ host, port, noDelay: true, onread: { buffer: reads.next, callback: reads.callback } });
}
