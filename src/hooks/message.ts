import { decodeFrame, type Frame } from '../codec/index.js';
import type { Direction, HookMessage } from './api.js';

/** A frame as hooks see it; the typed payload is decoded on first use only. */
export class FrameMessage implements HookMessage {
  #decoded: unknown;
  #isDecoded = false;

  constructor(
    readonly frame: Frame,
    readonly direction: Direction,
    readonly receivedAt: number,
  ) {}

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
