import type { Socket } from 'node:net';
import type { CutThroughSink } from '../../codec/index.js';

/**
 * The seam between a socket's bytes and the frame pipeline. `v1` (plain P2P framing) is the
 * only implementation today; BIP324 v2 arrives as one more file beside it.
 */
export interface Transport {
  readonly name: string;
  /** Turns one socket's bytes into frames for `sink` (whole, or cut through as they arrive). */
  reader(sink: CutThroughSink): FrameReader;
  /** Turns frames back into bytes on `socket`. */
  writer(socket: Socket): FrameWriter;
}

export interface FrameReader {
  /** a chunk read from the socket; with a reused read buffer it is only valid during the call */
  push(chunk: Buffer): void;
  /** bytes held until more arrive (a partial header, or a frame a hook wants whole) */
  readonly bufferedBytes: number;
}

export interface FrameWriter {
  /** false when frames cannot be written piecewise (then every frame is stored and forwarded) */
  readonly cutThrough: boolean;
  /** a whole frame, in stream order */
  frame(raw: Buffer): void;
  /** bytes of a frame passing through, in stream order; `buf` must not change until sent */
  bytes(buf: Buffer, start: number, end: number): void;
  /** the frame passing through is complete */
  frameEnd(): void;
  /**
   * A frame from outside the stream (a hook's push, a feature announcement). It waits for the
   * end of a frame passing through, so it never lands inside one.
   */
  inject(raw: Buffer): void;
  /**
   * Frames that hooks are still running over go out after this (they pass a run at a time):
   * injected frames wait for the next frameEnd() meanwhile, so what a hook sends lands after the
   * frames that came before the one it ran for.
   */
  holdInjected(): void;
  /** write what was added since the last flush */
  flush(): void;
  /** hold writes until uncork(), so what is written in between leaves in one go */
  cork(): void;
  uncork(): void;
}
