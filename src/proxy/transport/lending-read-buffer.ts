/**
 * The read buffers of a socket opened with `onread`: Node calls `next()` after every read for
 * the buffer of the following read.
 *
 * A quiet socket (a few hundred bytes now and then: an idle peer's handshake, pings, inv) reads
 * into one buffer the whole process shares, and its bytes are copied into a chunk of their own
 * (a slice of Node's pool when small). Reads run one at a time on the event loop and the copy
 * is made before the next one, so thousands of idle peers hold no read buffer at all, where a
 * 4 KB buffer per socket was 40 MB for 5,000 peers.
 *
 * A socket whose read fills BULK_READ bytes or more is sending in bulk: from its next read on
 * it reads into a buffer of its own (BULK_SIZE), without the copy. Bytes still queued in a
 * writable, or a frame a hook keeps, point into that buffer; then it is "lent" and the next
 * read gets a fresh one instead of overwriting them. After QUIET_READS small reads in a row the socket goes back
 * to the shared buffer and its own is left to the GC.
 */
export class LendingReadBuffer {
  #own: Buffer | null = null;
  #lent = false;
  #quiet = 0;
  /** the chunk the last read() returned */
  #last: Buffer | null = null;
  /** bytes at the end of #last to hand again at the start of the next chunk (see carry) */
  #carry = 0;
  /** what next() returned when it carried bytes over: #own after them */
  #after: Buffer | null = null;
  /** where `callback` hands the bytes; until set, they are kept (copied) for it */
  #target: ReadTarget | null = null;
  #early: Buffer[] | null = null;

  constructor(readonly max = BULK_SIZE) {}

  /** for onread.buffer */
  readonly next = (): Buffer => {
    if (this.#own === null) return shared();
    const k = this.#carry;
    if (this.#lent) {
      const fresh = Buffer.allocUnsafeSlow(this.max);
      if (k > 0) this.#last!.copy(fresh, 0, this.#last!.length - k);
      this.#own = fresh;
      this.#lent = false;
    } else if (k > 0) this.#own.copyWithin(0, this.#last!.length - k, this.#last!.length);
    if (k === 0) return this.#own;
    return (this.#after = this.#own.subarray(k));
  };

  /**
   * for onread.callback: the bytes go to the target (see deliverTo). One function per socket
   * doing the whole job, where a wrapper per socket and a delivery closure per session cost
   * each idle peer two more functions and their contexts.
   */
  readonly callback = (n: number, buf: Uint8Array): boolean => {
    const chunk = this.read(n, buf);
    if (this.#target !== null) this.#target.readFrom(this, chunk, n);
    else (this.#early ??= []).push(Buffer.from(chunk)); // a backend answers before its session exists
    return true; // backpressure is the session's pause()/resume()
  };

  /** From now on reads go to `target`; what came before goes first, now. */
  deliverTo(target: ReadTarget): void {
    this.#target = target;
    const early = this.#early;
    this.#early = null;
    if (early) for (const chunk of early) target.readFrom(this, chunk, chunk.length);
  }

  /** The `n` bytes the last read put into `buf`: a view of our own buffer (valid until the next read unless lent), or a copy. */
  read(n: number, buf: Uint8Array): Buffer {
    const own = this.#own;
    if (own !== null && (buf === own || buf === this.#after)) {
      // #after is #own past the bytes carried over from the read before
      const k = buf === own ? 0 : this.#carry;
      this.#carry = 0;
      this.#after = null;
      if (n >= BULK_READ) this.#quiet = 0;
      else if (++this.#quiet >= QUIET_READS) {
        this.#own = null; // the views of this read keep it alive as long as they need it
        this.#lent = false;
      }
      return (this.#last = own.subarray(0, k + n));
    }
    // the shared buffer: the next read of any socket overwrites it
    this.#last = null;
    const copy = Buffer.allocUnsafe(n);
    (buf as Buffer).copy(copy, 0, 0, n);
    if (n >= BULK_READ) {
      this.#own = Buffer.allocUnsafeSlow(this.max);
      this.#lent = false;
      this.#quiet = 0;
    }
    return copy;
  }

  /**
   * The last `bytes` of `chunk` begin a frame of `frameSize` bytes that the decoder wants whole:
   * when `chunk` is the last read's (not a copy, not a slice of it) of a buffer of our own, and
   * the frame is small, they are moved to the start of the buffer and the next read lands
   * right after them, so the frame arrives in one piece with the frames that follow it.
   */
  carry(chunk: Buffer, bytes: number, frameSize: number): boolean {
    if (chunk !== this.#last || this.#own === null || frameSize > CARRY_MAX || bytes > chunk.length) return false;
    this.#carry = bytes;
    return true;
  }

  /** the bytes of the last read are still referenced (queued in a writable, kept by a hook): do not reuse */
  lend(): void {
    if (this.#own !== null) this.#lent = true;
  }

  /** reading into a buffer of its own (for tests and stats) */
  get bulk(): boolean {
    return this.#own !== null;
  }
}

/** Who reads a socket through a LendingReadBuffer (`from` tells which of its sockets). */
export interface ReadTarget {
  /** `chunk` is only valid during the call unless the buffer is lent; its first `chunk.length - fresh` bytes were carried over from the read before (see carry) */
  readFrom(from: LendingReadBuffer, chunk: Buffer, fresh: number): void;
}

const SHARED_SIZE = 64 * 1024;
/**
 * A bulk reader's own buffer, as large as Node's default read. 256 KB reads take about a fifth
 * less proxy CPU for a stream of small messages (a quarter of the read and write calls), but a
 * read is what a slow peer's queue may pass its bound by (`sendBuffer` plus about one read):
 * 64 KB keeps that bound.
 */
const BULK_SIZE = 64 * 1024;
/** a read this large means bulk transfer: a buffer of its own saves copying it */
const BULK_READ = 4 * 1024;
/** the largest frame carried over between reads: a larger one is assembled on its own (it would be copied again on every read that does not complete it) */
const CARRY_MAX = 16 * 1024;
/** small reads in a row after which a socket gives its own buffer back */
const QUIET_READS = 16;

let sharedBuffer: Buffer | null = null;
function shared(): Buffer {
  return (sharedBuffer ??= Buffer.allocUnsafeSlow(SHARED_SIZE));
}
