import { decodeFrame, type Frame } from '../codec/index.js';
import type { Direction, HookMessage } from './api.js';

/**
 * A frame as hooks see it; the typed payload is decoded on first use only. The chain reuses one
 * object from frame to frame while hooks return synchronously (see HookMessage: a hook keeps
 * what it read, not `msg`); a hook that returns a promise keeps its object.
 */
export class FrameMessage implements HookMessage {
  #decoded: unknown;
  #isDecoded = false;

  constructor(
    public frame: Frame,
    public direction: Direction,
    public receivedAt: number,
  ) {}

  /** Point this object at the next frame. */
  reset(frame: Frame, direction: Direction, receivedAt: number): this {
    this.frame = frame;
    this.direction = direction;
    this.receivedAt = receivedAt;
    this.#decoded = undefined;
    this.#isDecoded = false;
    return this;
  }

  get command(): string {
    return this.frame.command;
  }
  get payload(): Buffer {
    return this.frame.payload;
  }
  get size(): number {
    return this.frame.length;
  }

  decode<T = unknown>(): T {
    if (!this.#isDecoded) {
      this.#decoded = decodeFrame(this.frame); // the lazy checksum policy checks here
      this.#isDecoded = true;
    }
    return this.#decoded as T;
  }
}
