import { FrameError } from './errors.js';
import { Frame } from './frame.js';
import { HEADER_SIZE, MAX_PROTOCOL_MESSAGE_LENGTH, magicMatches, readCommand } from './header.js';
import type { Network } from './networks.js';

/** `always`: verify every frame as it arrives. `lazy`: only when a payload is decoded or a frame is built. */
export type ChecksumPolicy = 'always' | 'lazy';

export interface FrameDecoderOptions {
  network: Network;
  /** largest payload accepted; default and ceiling is bitcoind's 4,000,000 */
  maxPayload?: number;
  checksum?: ChecksumPolicy;
}

export interface FrameSink {
  /** A complete frame. Its `raw` may be a view into the pushed chunk: call frame.copy() to keep it. */
  onFrame(frame: Frame): void;
  /**
   * A protocol violation. BAD_CHECKSUM drops just that frame and decoding goes on (as bitcoind
   * does); any other code desynchronises the stream and the decoder ignores all further input.
   */
  onError(error: FrameError): void;
}

/**
 * Incremental frame splitter. Feed it socket chunks of any size. A frame that lies inside one
 * chunk is handed out as a view (zero copy); a frame spread over chunks is assembled once into
 * a buffer of its exact size. It holds at most one partial frame (bounded by maxPayload) and
 * never keeps the pushed chunk past push().
 */
export class FrameDecoder {
  readonly network: Network;
  readonly maxPayload: number;
  readonly checksumPolicy: ChecksumPolicy;
  #failed: FrameError | null = null;
  /** a header split across chunks */
  readonly #header = Buffer.alloc(HEADER_SIZE);
  #headerFill = 0;
  /** a frame split across chunks, allocated at its full size once its header is known */
  #partial: Buffer | null = null;
  #partialFill = 0;
  #partialCommand = '';

  constructor(options: FrameDecoderOptions, private readonly sink: FrameSink) {
    this.network = options.network;
    const max = options.maxPayload ?? MAX_PROTOCOL_MESSAGE_LENGTH;
    if (!Number.isInteger(max) || max < 0 || max > MAX_PROTOCOL_MESSAGE_LENGTH) {
      throw new RangeError(`maxPayload must be an integer from 0 to ${MAX_PROTOCOL_MESSAGE_LENGTH}, got ${max}`);
    }
    this.maxPayload = max;
    this.checksumPolicy = options.checksum ?? 'lazy';
  }

  /** The fatal error that stopped this decoder, if any. */
  get failed(): FrameError | null {
    return this.#failed;
  }

  /** Bytes held between pushes (a partial header or frame). */
  get bufferedBytes(): number {
    return this.#partial ? this.#partialFill : this.#headerFill;
  }

  push(chunk: Buffer): void {
    if (this.#failed) return;
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.#partial) {
        const take = Math.min(this.#partial.length - this.#partialFill, len - pos);
        chunk.copy(this.#partial, this.#partialFill, pos, pos + take);
        this.#partialFill += take;
        pos += take;
        if (this.#partialFill < this.#partial.length) return;
        const raw = this.#partial;
        this.#partial = null;
        this.#partialFill = 0;
        this.#emit(raw, this.#partialCommand);
        continue;
      }
      if (this.#headerFill > 0 || len - pos < HEADER_SIZE) {
        // Header straddles chunks: gather it in the scratch buffer.
        const take = Math.min(HEADER_SIZE - this.#headerFill, len - pos);
        chunk.copy(this.#header, this.#headerFill, pos, pos + take);
        this.#headerFill += take;
        pos += take;
        if (this.#headerFill < HEADER_SIZE) return;
        this.#headerFill = 0;
        const payloadLen = this.#parseHeader(this.#header, 0);
        if (payloadLen < 0) return;
        const raw = Buffer.allocUnsafe(HEADER_SIZE + payloadLen);
        this.#header.copy(raw, 0);
        if (payloadLen === 0) {
          this.#emit(raw, this.#partialCommand);
        } else {
          this.#partial = raw;
          this.#partialFill = HEADER_SIZE;
        }
        continue;
      }
      // Fast path: the header is whole inside this chunk.
      const payloadLen = this.#parseHeader(chunk, pos);
      if (payloadLen < 0) return;
      const end = pos + HEADER_SIZE + payloadLen;
      if (end <= len) {
        this.#emit(chunk.subarray(pos, end), this.#partialCommand);
        pos = end;
      } else {
        this.#partial = Buffer.allocUnsafe(HEADER_SIZE + payloadLen);
        chunk.copy(this.#partial, 0, pos, len);
        this.#partialFill = len - pos;
        return;
      }
    }
  }

  /** Validates the header at buf[off..off+24]; returns the payload length, or -1 after a fatal error. */
  #parseHeader(buf: Buffer, off: number): number {
    try {
      if (!magicMatches(buf, off, this.network.magic)) {
        throw new FrameError(
          'BAD_MAGIC',
          `wrong network magic ${buf.toString('hex', off, off + 4)}, expected ${this.network.magic.toString('hex')} (${this.network.name})`,
        );
      }
      const command = readCommand(buf, off + 4);
      const payloadLen = buf.readUInt32LE(off + 16);
      if (payloadLen > this.maxPayload) {
        throw new FrameError('OVERSIZED', `"${command}" declares ${payloadLen} payload bytes, above the maximum of ${this.maxPayload}`, command);
      }
      this.#partialCommand = command;
      return payloadLen;
    } catch (err) {
      this.#fail(err as FrameError);
      return -1;
    }
  }

  #emit(raw: Buffer, command: string): void {
    if (this.checksumPolicy === 'always') {
      const frame = new Frame(raw, command);
      if (!frame.checksumValid()) {
        this.sink.onError(new FrameError('BAD_CHECKSUM', `checksum mismatch on "${command}" (${raw.length - HEADER_SIZE} bytes)`, command));
        return;
      }
      this.sink.onFrame(frame);
      return;
    }
    this.sink.onFrame(new Frame(raw, command));
  }

  #fail(error: FrameError): void {
    this.#failed = error;
    this.#partial = null;
    this.#headerFill = 0;
    this.sink.onError(error);
  }
}

/** Decode a whole buffer at once (tests, tools). Throws the first FrameError. */
export function decodeFrames(buf: Buffer, options: FrameDecoderOptions): Frame[] {
  const frames: Frame[] = [];
  let error: FrameError | null = null;
  const decoder = new FrameDecoder(options, {
    onFrame: (f) => frames.push(f.copy()),
    onError: (e) => {
      error ??= e;
    },
  });
  decoder.push(buf);
  if (error) throw error;
  if (decoder.bufferedBytes > 0) throw new FrameError('TRUNCATED', `stream ends inside a frame (${decoder.bufferedBytes} bytes left over)`);
  return frames;
}
