import type { Socket } from 'node:net';
import { FrameDecoder, type CutThroughSink, type FrameDecoderOptions } from '../../codec/index.js';
import { CoalescingWriter } from './coalescing-writer.js';
import type { FrameReader, FrameWriter, Transport } from './types.js';

/** Plain P2P v1 framing: magic, command, length, checksum, payload; bytes go out as they came in. */
export function v1Transport(options: FrameDecoderOptions): Transport {
  return {
    name: 'v1',
    reader: (sink: CutThroughSink): FrameReader => new FrameDecoder(options, sink),
    writer: (socket: Socket): FrameWriter => new V1Writer(socket),
  };
}

class V1Writer implements FrameWriter {
  readonly cutThrough = true;
  readonly #out: CoalescingWriter;
  #midFrame = false;
  /** injected frames waiting for the frame passing through to end (made when one first waits) */
  #held: Buffer[] | null = null;

  constructor(private readonly socket: Socket) {
    this.#out = new CoalescingWriter(socket);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  frame(raw: Buffer): void {
    this.#out.add(raw);
  }

  bytes(buf: Buffer, start: number, end: number): void {
    this.#midFrame = true;
    this.#out.addRange(buf, start, end);
  }

  frameEnd(): void {
    this.#midFrame = false;
    if (this.#held === null || this.#held.length === 0) return;
    for (const raw of this.#held) this.#out.add(raw);
    this.#held.length = 0;
  }

  holdInjected(): void {
    this.#midFrame = true;
  }

  inject(raw: Buffer): void {
    if (this.#midFrame) {
      (this.#held ??= []).push(raw);
      return;
    }
    this.#out.add(raw);
    this.#out.flush();
  }

  flush(): void {
    this.#out.flush();
  }
}
