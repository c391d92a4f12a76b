/**
 * Every way a byte stream or a payload can violate the protocol has a code, so callers
 * (the proxy, hooks, tests) can count and act on it without parsing messages.
 */
export type FrameErrorCode =
  | 'BAD_MAGIC' // stream is not for this network (or not v1 P2P at all)
  | 'BAD_COMMAND' // command field is not printable ASCII followed by NUL padding
  | 'OVERSIZED' // declared payload length above the configured maximum
  | 'BAD_CHECKSUM' // payload does not hash to the header checksum
  | 'TRUNCATED'; // the stream ended inside a frame

export type PayloadErrorCode =
  | 'TRUNCATED' // payload ended before the structure did
  | 'TRAILING_BYTES' // payload has bytes after the structure
  | 'NON_CANONICAL' // CompactSize not in its shortest form (bitcoind rejects these)
  | 'LIMIT' // a count or length above bitcoind's limit for this message
  | 'INVALID'; // any other structural violation

/** A violation of the frame layer. BAD_MAGIC, BAD_COMMAND and OVERSIZED desynchronise the stream; BAD_CHECKSUM does not. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly code: FrameErrorCode,
    message: string,
    /** the command of the offending frame, when the header got that far */
    readonly command?: string,
  ) {
    super(message);
  }
}

/** A payload that does not decode as the message its command names. */
export class PayloadError extends Error {
  override readonly name = 'PayloadError';
  constructor(
    readonly code: PayloadErrorCode,
    readonly command: string,
    message: string,
  ) {
    super(`${command}: ${message}`);
  }
}
