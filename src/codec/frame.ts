import { checksum, checksumMatches } from './checksum.js';
import { FrameError } from './errors.js';
import { HEADER_SIZE, MAX_PROTOCOL_MESSAGE_LENGTH, writeCommand } from './header.js';
import type { Network } from './networks.js';

/**
 * One P2P message as it was on the wire. `raw` holds header and payload, so a frame that
 * nobody changes is forwarded byte for byte; everything else is derived lazily from it.
 */
export class Frame {
  #checksumOk: boolean | undefined;
  #raw: Buffer | null;

  /**
   * `source[start..end)` are the frame's bytes (all of `source` by default). A frame the decoder
   * hands out is a range of the socket chunk: no Buffer view is made for it until `raw` is read,
   * so a frame that hooks only look at and pass on costs no allocation but this object.
   */
  constructor(
    readonly source: Buffer,
    readonly command: string,
    checksumOk?: boolean,
    readonly start = 0,
    readonly end = source.length,
  ) {
    this.#checksumOk = checksumOk;
    this.#raw = start === 0 && end === source.length ? source : null;
  }

  /** header + payload, exactly as received (or as built by encodeFrame) */
  get raw(): Buffer {
    return (this.#raw ??= this.source.subarray(this.start, this.end));
  }

  /** header + payload bytes */
  get byteLength(): number {
    return this.end - this.start;
  }

  /** payload length in bytes */
  get length(): number {
    return this.end - this.start - HEADER_SIZE;
  }

  /** a view of the payload inside `raw` (no copy) */
  get payload(): Buffer {
    return this.source.subarray(this.start + HEADER_SIZE, this.end);
  }

  /** Checks the header checksum once and remembers the answer. */
  checksumValid(): boolean {
    if (this.#checksumOk === undefined) this.#checksumOk = checksumMatches(this.payload, this.source, this.start + 20);
    return this.#checksumOk;
  }

  /** Throws FrameError('BAD_CHECKSUM') unless the checksum matches (the `lazy` policy's check). */
  assertChecksum(): void {
    if (!this.checksumValid()) {
      throw new FrameError('BAD_CHECKSUM', `checksum mismatch on "${this.command}" (${this.length} bytes)`, this.command);
    }
  }

  /**
   * A frame that owns its bytes. Frames from the decoder may be views into a socket read
   * buffer that the next read overwrites; copy before keeping one past the current read.
   */
  copy(): Frame {
    return new Frame(Buffer.from(this.raw), this.command, this.#checksumOk);
  }
}

/** Build a frame for `network` with a fresh checksum. */
export function encodeFrame(network: Network, command: string, payload: Uint8Array = EMPTY, maxPayload = MAX_PROTOCOL_MESSAGE_LENGTH): Frame {
  if (payload.length > maxPayload) {
    throw new FrameError('OVERSIZED', `payload of "${command}" is ${payload.length} bytes, above the maximum of ${maxPayload}`, command);
  }
  const raw = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  network.magic.copy(raw, 0);
  writeCommand(command, raw, 4);
  raw.writeUInt32LE(payload.length, 16);
  checksum(payload).copy(raw, 20);
  raw.set(payload, HEADER_SIZE);
  return new Frame(raw, command, true);
}

const EMPTY = Buffer.alloc(0);
