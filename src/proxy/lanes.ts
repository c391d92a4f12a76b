import type { Socket } from 'node:net';
import type { Frame } from '../codec/index.js';

/**
 * One direction's ordered queue behind an async hook. While a hook of this direction awaits,
 * later frames wait here (copied: the read buffer they point into is reused) in arrival order;
 * past `limit` bytes the source socket is paused, so TCP pushes back on the sender.
 */
export class Lane {
  #busy = false;
  #bytes = 0;
  /** made at the first frame that waits: most lanes never hold one */
  #queue: Frame[] | null = null;
  /** the lane paused the source and has not let it read again (a full destination may hold it too) */
  #holding = false;

  constructor(
    private readonly src: Socket,
    private readonly limit: number,
  ) {}

  /** a hook of this direction is awaited: frames must queue */
  get busy(): boolean {
    return this.#busy;
  }

  /** a frame ever waited here, so the queue exists (an idle peer's lanes never make one) */
  get queueMade(): boolean {
    return this.#queue !== null;
  }

  get queuedBytes(): number {
    return this.#bytes;
  }

  /** the lane keeps its source paused: nothing else may resume it */
  get holdsSource(): boolean {
    return this.#holding;
  }

  enqueue(frame: Frame): void {
    const copy = frame.copy();
    (this.#queue ??= []).push(copy);
    this.#bytes += copy.raw.length;
    if (this.#bytes >= this.limit) this.#pauseSource();
  }

  /** Put `frame` back at the head of the queue (it came before everything queued) and stop reading. */
  holdFirst(frame: Frame): void {
    const copy = frame.copy();
    (this.#queue ??= []).unshift(copy);
    this.#bytes += copy.raw.length;
    this.#pauseSource();
  }

  #pauseSource(): void {
    this.#holding = true;
    this.src.pause();
  }

  /**
   * Hold the lane until `pending` settles: then `settled(value)`, then the queued frames go to
   * `driver.next` in order until one of them holds the lane again.
   */
  hold<T>(pending: Promise<T>, settled: (value: T) => void, driver: LaneDriver): void {
    this.#busy = true;
    pending.then((value) => {
      if (driver.stopped()) return;
      this.#busy = false;
      settled(value);
      while (!this.#busy && this.#queue !== null && this.#queue.length > 0 && !driver.stopped()) {
        const frame = this.#queue.shift()!;
        this.#bytes -= frame.raw.length;
        driver.next(frame);
      }
      driver.drained();
      if (!this.#busy && this.#bytes < this.limit && this.#holding && !driver.stopped()) {
        // only what the lane paused: a source paused for its destination's full buffer stays so until that drains
        this.#holding = false;
        driver.resumeSource();
      }
    }, (err: unknown) => driver.failed(err));
  }
}

/** What a lane needs from the pipeline it orders. */
export interface LaneDriver {
  /** a queued frame's turn */
  next(frame: Frame): void;
  /** the queue ran empty or is held again: write out what was forwarded */
  drained(): void;
  /** the session closed: stop */
  stopped(): boolean;
  /** the lane no longer holds the source back: read again, unless its destination is still full */
  resumeSource(): void;
  /** the awaited hook chain itself failed */
  failed(err: unknown): void;
}
