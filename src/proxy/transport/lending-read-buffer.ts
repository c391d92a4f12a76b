/**
 * One reusable read buffer for a socket opened with `net.connect({ onread })`: Node calls
 * `next()` after every read for the buffer of the following read. Reusing one buffer saves
 * the per-read allocation, but bytes still queued in a writable after a read point into it;
 * then the buffer is "lent" and the next read gets a fresh one instead of overwriting it.
 */
export class LendingReadBuffer {
  #buf: Buffer;
  #lent = false;

  constructor(readonly size = 64 * 1024) {
    this.#buf = Buffer.allocUnsafeSlow(size);
  }

  /** for onread.buffer */
  readonly next = (): Buffer => {
    if (this.#lent) {
      this.#buf = Buffer.allocUnsafeSlow(this.size);
      this.#lent = false;
    }
    return this.#buf;
  };

  /** the bytes of the last read are still referenced (queued in a writable): do not reuse */
  lend(): void {
    this.#lent = true;
  }
}
