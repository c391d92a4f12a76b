import { FrameError } from './errors.js';
import { Frame } from './frame.js';
import { COMMAND_SIZE, HEADER_SIZE, MAX_PROTOCOL_MESSAGE_LENGTH, internCommand, magicMatches, readCommand, uint32At } from './header.js';
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
   * A protocol violation, with bitcoind's consequences (net.cpp V1Transport): BAD_CHECKSUM and
   * BAD_COMMAND drop just that frame and decoding goes on; BAD_MAGIC and OVERSIZED
   * desynchronise the stream and the decoder ignores all further input.
   */
  onError(error: FrameError): void;
}

/**
 * The command of a frame whose command field bitcoind rejects (not printable ASCII then NUL
 * padding). No valid command contains a NUL, so it never names a real one.
 */
export const INVALID_COMMAND = '\0';

/**
 * A sink that can take frames as they arrive (cut-through) instead of whole. Every byte that
 * bitcoind would read reaches it, in order, either inside a whole frame (onFrame) or through
 * onBytes: cut-through frames, frames with an invalid command field (bitcoind drops those
 * itself), and a header that is fatal (bitcoind logs it and disconnects) before onError.
 */
export interface CutThroughSink extends FrameSink {
  /**
   * A header with a valid magic and size is whole: true to get this frame through onBytes as it
   * arrives. `command` is INVALID_COMMAND for a field bitcoind rejects: declined, such a frame
   * comes whole to onFrame with that command (after BAD_COMMAND went to onError), to pass on
   * unread for bitcoind to drop.
   */
  wantsCut(command: string, payloadLength: number): boolean;
  /**
   * A header is still incomplete; `header[0..n)` are its bytes so far. True lets them out now:
   * the frame is then cut through whatever its command turns out to be.
   */
  mayCutEarly(header: Buffer, n: number): boolean;
  /** A cut-through frame's header is whole: its command (maybe INVALID_COMMAND) and payload length. */
  onCutStart(command: string, payloadLength: number): void;
  /** `buf[start..end)`: the next bytes of the stream; valid only during the call. */
  onBytes(buf: Buffer, start: number, end: number): void;
  /** The last byte of the cut-through frame went to onBytes. */
  onCutEnd(): void;
  /**
   * Optional. With it, the sink's wantsCut answer for a command holds for the frames that
   * follow it in the same chunk: whole frames right after a cut-through one, with the same magic
   * and command field and a valid size, are cut through with it without asking, and reported
   * here (after its onCutStart, before its onBytes, which then covers them all). A run of small
   * frames then costs a header comparison each, not a round of calls.
   */
  onCutRun?(command: string, frames: number, bytes: number): void;
  /**
   * Optional. A declined frame (valid command) that lies whole in the pushed chunk, and the
   * whole frames right after it with the same magic and command field and a valid size: the
   * range `chunk[start..stop)` instead of Frames (frameLengthAt gives each one's end), so the
   * sink makes a Frame only for one it keeps or changes. Returns where it stopped: frames from
   * there on go the usual way (wantsCut asked anew). Valid only during the call, like onBytes.
   * Not used with the `always` policy.
   */
  onFrames?(chunk: Buffer, command: string, start: number, stop: number): number;
  /**
   * Optional. The last `bytes` of `chunk` begin a frame of `frameSize` bytes (HEADER_SIZE when
   * only part of its header is there) that is not cut through. True: the reader of the socket
   * will hand them again at the start of the next chunk (it reads after them in the same
   * buffer), so the decoder leaves them instead of copying them into a frame of their own; a
   * frame split across reads then still goes on in the same write as the frames after it.
   */
  carry?(chunk: Buffer, bytes: number, frameSize: number): boolean;
}

function isCutSink(sink: FrameSink): sink is CutThroughSink {
  return typeof (sink as Partial<CutThroughSink>).onBytes === 'function';
}

const enum Mode {
  Header,
  /** assembling a frame whole in #partial */
  Whole,
  /** handing the payload of a cut-through frame out as it arrives */
  Cut,
}

/**
 * Incremental frame splitter. Feed it socket chunks of any size. A frame that lies inside one
 * chunk is handed out as a view (zero copy); a frame spread over chunks is assembled once into
 * a buffer of its exact size. It holds at most one partial frame (bounded by maxPayload) and
 * never keeps the pushed chunk past push(). With a CutThroughSink, frames the sink wants cut
 * through are not held at all: their bytes are handed on as they arrive.
 */
export class FrameDecoder {
  readonly network: Network;
  readonly maxPayload: number;
  readonly checksumPolicy: ChecksumPolicy;
  #failed: FrameError | null = null;
  /** the sink, when it takes bytes: it then gets fatal headers and bad-command frames too */
  readonly #passOn: CutThroughSink | null;
  /** the sink, when frames may be cut through (not with `always`) */
  readonly #cut: CutThroughSink | null;
  #mode = Mode.Header;
  /** a header split across chunks */
  #headerBuf: Buffer | null = null;
  #headerFill = 0;
  /** the bytes of the header being gathered already went to onBytes */
  #headerOut = false;
  /** a frame split across chunks, allocated at its full size once its header is known */
  #partial: Buffer | null = null;
  #partialFill = 0;
  /** the command of the frame in #partial */
  #partialCommand = '';
  /** payload bytes of the cut-through frame still to come */
  #remaining = 0;
  /** the sink takes runs of frames (onCutRun) */
  readonly #runs: boolean;
  /** the sink takes whole frames as ranges of the chunk (onFrames) */
  readonly #ranges: CutThroughSink | null;
  /** the sink may carry a frame's first bytes over to the next chunk (carry) */
  readonly #carrier: CutThroughSink | null;
  /** frames in the run #scanRun found last */
  #runFrames = 0;
  /**
   * Magic and command field of the last valid header read whole from a chunk, as four words, and
   * its command: a stream of one command (the common case) skips the magic check and the
   * command lookup. -1 matches no word.
   */
  #memo0 = -1;
  #memo1 = 0;
  #memo2 = 0;
  #memo3 = 0;
  #memoCommand = '';

  constructor(
    options: FrameDecoderOptions,
    private readonly sink: FrameSink,
  ) {
    this.network = options.network;
    const max = options.maxPayload ?? MAX_PROTOCOL_MESSAGE_LENGTH;
    if (!Number.isInteger(max) || max < 0 || max > MAX_PROTOCOL_MESSAGE_LENGTH) {
      throw new RangeError(`maxPayload must be an integer from 0 to ${MAX_PROTOCOL_MESSAGE_LENGTH}, got ${max}`);
    }
    this.maxPayload = max;
    this.checksumPolicy = options.checksum ?? 'lazy';
    // `always` must see the whole frame before any byte of it goes on: no cut-through then
    this.#passOn = isCutSink(sink) ? sink : null;
    this.#cut = this.checksumPolicy === 'lazy' ? this.#passOn : null;
    this.#runs = typeof this.#cut?.onCutRun === 'function';
    this.#ranges = typeof this.#cut?.onFrames === 'function' ? this.#cut : null;
    this.#carrier = typeof this.#cut?.carry === 'function' ? this.#cut : null;
  }

  /** The fatal error that stopped this decoder, if any. */
  get failed(): FrameError | null {
    return this.#failed;
  }

  /** the scratch header, allocated the first time a header straddles two chunks (an idle peer never needs it) */
  get #header(): Buffer {
    return (this.#headerBuf ??= Buffer.alloc(HEADER_SIZE));
  }

  /** Bytes held between pushes (a partial header or frame; nothing for a cut-through frame). */
  get bufferedBytes(): number {
    return this.#partial ? this.#partialFill : this.#headerFill;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len && !this.#failed) {
      if (this.#mode === Mode.Cut) {
        const take = Math.min(this.#remaining, len - pos);
        this.#cut!.onBytes(chunk, pos, pos + take);
        pos += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#endCut();
        continue;
      }
      if (this.#mode === Mode.Whole) {
        const partial = this.#partial!;
        const take = Math.min(partial.length - this.#partialFill, len - pos);
        chunk.copy(partial, this.#partialFill, pos, pos + take);
        this.#partialFill += take;
        pos += take;
        if (this.#partialFill < partial.length) return;
        this.#partial = null;
        this.#partialFill = 0;
        this.#mode = Mode.Header;
        this.#emit(partial, this.#partialCommand);
        continue;
      }
      if (this.#headerFill === 0) {
        if (len - pos >= HEADER_SIZE) {
          pos = this.#headerInChunk(chunk, pos);
          continue;
        }
        if (this.#carrier !== null && this.#carrier.carry!(chunk, len - pos, HEADER_SIZE)) return;
      }
      // The header straddles chunks: gather it in the scratch buffer.
      const take = Math.min(HEADER_SIZE - this.#headerFill, len - pos);
      chunk.copy(this.#header, this.#headerFill, pos, pos + take);
      if (this.#headerOut) this.#cut!.onBytes(chunk, pos, pos + take);
      this.#headerFill += take;
      pos += take;
      if (this.#headerFill < HEADER_SIZE) {
        if (!this.#headerOut && this.#cut && this.#cut.mayCutEarly(this.#header, this.#headerFill)) {
          this.#headerOut = true;
          this.#cut.onBytes(Buffer.from(this.#header.subarray(0, this.#headerFill)), 0, this.#headerFill);
        }
        return;
      }
      this.#headerFill = 0;
      this.#headerGathered();
    }
  }

  /** A header lies whole in `chunk` at `pos`: the fast path. Returns the new position. */
  #headerInChunk(chunk: Buffer, pos: number): number {
    let payloadLen: number;
    let command: string;
    if (
      uint32At(chunk, pos) === this.#memo0 &&
      uint32At(chunk, pos + 4) === this.#memo1 &&
      uint32At(chunk, pos + 8) === this.#memo2 &&
      uint32At(chunk, pos + 12) === this.#memo3 &&
      (payloadLen = uint32At(chunk, pos + 16)) <= this.maxPayload
    ) {
      command = this.#memoCommand; // the magic and command field of the last good header: checked then
    } else {
      payloadLen = this.#checkHeader(chunk, pos, false);
      if (payloadLen < 0) return chunk.length;
      command = internCommand(chunk, pos + 4) ?? INVALID_COMMAND;
      if (command !== INVALID_COMMAND) {
        this.#memo0 = uint32At(chunk, pos);
        this.#memo1 = uint32At(chunk, pos + 4);
        this.#memo2 = uint32At(chunk, pos + 8);
        this.#memo3 = uint32At(chunk, pos + 12);
        this.#memoCommand = command;
      }
    }
    const end = pos + HEADER_SIZE + payloadLen;
    if (this.#cut && this.#cut.wantsCut(command, payloadLen)) {
      if (command === INVALID_COMMAND) this.#badCommand(chunk, pos + 4);
      this.#cut.onCutStart(command, payloadLen);
      let stop = Math.min(end, chunk.length);
      if (this.#runs && end < chunk.length && command !== INVALID_COMMAND) {
        stop = this.#scanRun(chunk, pos, end);
        if (this.#runFrames > 0) this.#cut.onCutRun!(command, this.#runFrames, stop - end);
      }
      this.#cut.onBytes(chunk, pos, stop);
      this.#remaining = Math.max(0, end - stop);
      if (this.#remaining === 0) this.#endCut();
      else this.#mode = Mode.Cut;
      return stop;
    }
    if (end <= chunk.length) {
      if (this.#ranges === null || command === INVALID_COMMAND) {
        this.#emit(chunk, command, pos, end);
        return end;
      }
      return this.#ranges.onFrames!(chunk, command, pos, end < chunk.length ? this.#scanRun(chunk, pos, end) : end);
    }
    if (this.#carrier !== null && this.#carrier.carry!(chunk, chunk.length - pos, HEADER_SIZE + payloadLen)) return chunk.length;
    this.#partial = Buffer.allocUnsafe(HEADER_SIZE + payloadLen);
    chunk.copy(this.#partial, 0, pos, chunk.length);
    this.#partialFill = chunk.length - pos;
    this.#partialCommand = command;
    this.#mode = Mode.Whole;
    return chunk.length;
  }

  /**
   * Whole frames from `from` on whose magic and command field equal those of the frame at
   * `first`, and whose size is valid: returns where they end, their number in #runFrames.
   */
  #scanRun(chunk: Buffer, first: number, from: number): number {
    const len = chunk.length;
    const max = this.maxPayload;
    // magic and command field as four words, compared a word at a time (a DataView reads a word in one load)
    const v = new DataView(chunk.buffer, chunk.byteOffset, len);
    const w0 = v.getUint32(first, true);
    const w1 = v.getUint32(first + 4, true);
    const w2 = v.getUint32(first + 8, true);
    const w3 = v.getUint32(first + 12, true);
    let p = from;
    let n = 0;
    while (p + HEADER_SIZE <= len) {
      if (v.getUint32(p, true) !== w0 || v.getUint32(p + 4, true) !== w1 || v.getUint32(p + 8, true) !== w2 || v.getUint32(p + 12, true) !== w3) break;
      const payloadLen = v.getUint32(p + 16, true);
      const end = p + HEADER_SIZE + payloadLen;
      if (payloadLen > max || end > len) break;
      n++;
      p = end;
    }
    this.#runFrames = n;
    return p;
  }

  /** The scratch header is whole. */
  #headerGathered(): void {
    const wasOut = this.#headerOut;
    this.#headerOut = false;
    const payloadLen = this.#checkHeader(this.#header, 0, wasOut);
    if (payloadLen < 0) return;
    const command = internCommand(this.#header, 4) ?? INVALID_COMMAND;
    if (this.#cut && (wasOut || this.#cut.wantsCut(command, payloadLen))) {
      if (command === INVALID_COMMAND) this.#badCommand(this.#header, 4);
      this.#cut.onCutStart(command, payloadLen);
      // the scratch header is reused by the next frame: hand out a copy, as the receiver may queue it
      if (!wasOut) this.#cut.onBytes(Buffer.from(this.#header), 0, HEADER_SIZE);
      this.#remaining = payloadLen;
      if (payloadLen === 0) this.#endCut();
      else this.#mode = Mode.Cut;
      return;
    }
    const raw = Buffer.allocUnsafe(HEADER_SIZE + payloadLen);
    this.#header.copy(raw, 0);
    if (payloadLen === 0) return this.#emit(raw, command);
    this.#partial = raw;
    this.#partialFill = HEADER_SIZE;
    this.#partialCommand = command;
    this.#mode = Mode.Whole;
  }

  /**
   * bitcoind's header checks (magic, then size) on buf[off..off+24]. Returns the payload length,
   * or -1 after a fatal error; a cut-through sink gets the offending header first, as bitcoind
   * reads all 24 bytes before it judges them.
   */
  #checkHeader(buf: Buffer, off: number, alreadyOut: boolean): number {
    let error: FrameError | null = null;
    const payloadLen = buf.readUInt32LE(off + 16);
    if (!magicMatches(buf, off, this.network.magic)) {
      error = new FrameError(
        'BAD_MAGIC',
        `wrong network magic ${buf.toString('hex', off, off + 4)}, expected ${this.network.magic.toString('hex')} (${this.network.name})`,
      );
    } else if (payloadLen > this.maxPayload) {
      const command = internCommand(buf, off + 4) ?? printable(buf, off + 4);
      error = new FrameError('OVERSIZED', `"${command}" declares ${payloadLen} payload bytes, above the maximum of ${this.maxPayload}`, command);
    }
    if (!error) return payloadLen;
    if (this.#passOn && !alreadyOut) this.#passOn.onBytes(buf === this.#headerBuf ? Buffer.from(buf) : buf, off, off + HEADER_SIZE);
    this.#fail(error);
    return -1;
  }

  /** bitcoind drops a frame whose command field is invalid and keeps the peer (net.cpp GetMessage). */
  #badCommand(buf: Buffer, off: number): void {
    try {
      readCommand(buf, off);
    } catch (err) {
      this.sink.onError(err as FrameError);
    }
  }

  #endCut(): void {
    this.#mode = Mode.Header;
    this.#cut!.onCutEnd();
  }

  /** A whole frame: `raw[start..end)` (all of `raw` by default). */
  #emit(raw: Buffer, command: string, start = 0, end = raw.length): void {
    const frame = new Frame(raw, command, undefined, start, end);
    if (this.checksumPolicy === 'always' && !frame.checksumValid()) {
      const name = command === INVALID_COMMAND ? printable(raw, start + 4) : command;
      this.sink.onError(new FrameError('BAD_CHECKSUM', `checksum mismatch on "${name}" (${end - start - HEADER_SIZE} bytes)`, name));
      return;
    }
    if (command !== INVALID_COMMAND) return this.sink.onFrame(frame);
    // bitcoind drops such a frame; a sink that passes bytes on gets it, for bitcoind to do so
    this.#badCommand(raw, start + 4);
    if (this.#passOn) this.sink.onFrame(frame);
  }

  #fail(error: FrameError): void {
    this.#failed = error;
    this.#partial = null;
    this.#headerFill = 0;
    this.#mode = Mode.Header;
    this.sink.onError(error);
  }
}


/** The command field as text for messages, invalid bytes escaped. */
function printable(buf: Buffer, offset: number): string {
  let s = '';
  for (let i = offset; i < offset + COMMAND_SIZE && buf[i] !== 0; i++) {
    const c = buf[i]!;
    s += c >= 0x20 && c <= 0x7e ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return s;
}

/** Decode a whole buffer at once (tests, tools). Throws the first fatal FrameError or BAD_CHECKSUM. */
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
