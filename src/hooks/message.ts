import { Frame, HEADER_SIZE, decodeFrame } from '../codec/index.js';
import type { Direction, HookMessage } from './api.js';

const NOT_DECODED: unique symbol = Symbol('not decoded');

/**
 * A frame as hooks see it; the typed payload is decoded on first use only. The chain reuses one
 * object from frame to frame while hooks return synchronously (see HookMessage: a hook keeps
 * what it read, not `msg`); a hook that returns a promise keeps its object.
 *
 * It may stand for a range of a socket read (`source[start..end)`) with no Frame made for it:
 * hooks see only the command, size and payload, and the Frame is built when the chain needs one
 * (a hook returned something, or awaits).
 */
export class FrameMessage implements HookMessage {
  #frame!: Frame | null;
  source!: Buffer;
  command!: string;
  start!: number;
  end!: number;
  direction!: Direction;
  receivedAt!: number;
  #decoded: unknown;
  /**
   * A hook read the payload (a view of the frame's bytes, maybe of a reused socket read buffer)
   * or decoded it (decoded fields may be views too): it may keep them past the call. A hook that
   * only looked at the command and size did not, so the read buffer can be reused.
   */
  bytesSeen!: boolean;

  /** `frame`, or (null) the range `source[start..end)` of a read, with no Frame made for it yet. */
  constructor(frame: Frame | null, source: Buffer, command: string, start: number, end: number, direction: Direction, receivedAt: number) {
    this.reset(frame, source, command, start, end, direction, receivedAt);
  }

  /** A message for a whole frame. */
  static of(frame: Frame, direction: Direction, receivedAt: number): FrameMessage {
    return new FrameMessage(frame, frame.source, frame.command, frame.start, frame.end, direction, receivedAt);
  }

  /** Point this object at the next frame: `frame`, or (null) the range `source[start..end)`. */
  reset(frame: Frame | null, source: Buffer, command: string, start: number, end: number, direction: Direction, receivedAt: number): this {
    this.#frame = frame;
    this.source = source;
    this.command = command;
    this.start = start;
    this.end = end;
    this.direction = direction;
    this.receivedAt = receivedAt;
    this.#decoded = NOT_DECODED;
    this.bytesSeen = false;
    return this;
  }

  /** The next frame of the same read and command: `source[start..end)`. */
  moveTo(start: number, end: number): void {
    this.#frame = null;
    this.start = start;
    this.end = end;
    this.#decoded = NOT_DECODED;
  }

  /** the frame (built now if this message stands for a range) */
  get frame(): Frame {
    return (this.#frame ??= new Frame(this.source, this.command, undefined, this.start, this.end));
  }

  get payload(): Buffer {
    this.bytesSeen = true;
    return this.source.subarray(this.start + HEADER_SIZE, this.end);
  }
  get size(): number {
    return this.end - this.start - HEADER_SIZE;
  }

  decode<T = unknown>(): T {
    if (this.#decoded === NOT_DECODED) {
      this.bytesSeen = true;
      this.#decoded = decodeFrame(this.frame); // the lazy checksum policy checks here
    }
    return this.#decoded as T;
  }
}
