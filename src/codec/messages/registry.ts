import { PayloadError } from '../errors.js';
import { PayloadReader } from '../reader.js';
import { PayloadWriter } from '../writer.js';

/** Decoder and encoder for one command's payload. decode(encode(x)) === x and encode(decode(b)) === b. */
export interface MessageCodec<T> {
  readonly command: string;
  decode(r: PayloadReader): T;
  encode(w: PayloadWriter, value: T): void;
}

// A Map, not an object: commands named like `constructor` or `__proto__` must be plain misses.
const codecs = new Map<string, MessageCodec<unknown>>();

export function defineCodec<T>(codec: MessageCodec<T>): MessageCodec<T> {
  codecs.set(codec.command, codec as MessageCodec<unknown>);
  return codec;
}

export function codecFor(command: string): MessageCodec<unknown> | undefined {
  return codecs.get(command);
}

export function knownCommands(): string[] {
  return [...codecs.keys()];
}

/** Decode a payload with the codec of `command`; the whole payload must be consumed. */
export function decodePayload<T = unknown>(command: string, payload: Buffer): T {
  const codec = codecs.get(command);
  if (!codec) throw new PayloadError('INVALID', command, 'no payload codec for this command');
  const r = new PayloadReader(payload, command);
  const value = codec.decode(r);
  r.end();
  return value as T;
}

export function encodePayload(command: string, value: unknown): Buffer {
  const codec = codecs.get(command);
  if (!codec) throw new PayloadError('INVALID', command, 'no payload codec for this command');
  const w = new PayloadWriter();
  codec.encode(w, value);
  return w.finish();
}

/** A codec for messages with an empty payload (verack, getaddr, ...). */
export function emptyCodec(command: string): MessageCodec<Record<string, never>> {
  return defineCodec({
    command,
    decode: () => ({}),
    encode: () => {},
  });
}
