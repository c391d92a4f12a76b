import type { Socket } from 'node:net';

/**
 * Stop reading from `src` while `dst` has `limit` bytes or more queued (bitcoind's
 * -maxsendbuffer idea); resume on drain unless `stopped()` by then.
 */
export function pauseWhileFull(src: Socket, dst: Socket, limit: number, stopped: () => boolean): void {
  if (dst.writableLength < limit || !dst.writableNeedDrain || src.isPaused()) return;
  src.pause();
  dst.once('drain', () => {
    if (!stopped()) src.resume();
  });
}
