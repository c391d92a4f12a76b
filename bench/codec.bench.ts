/**
 * FrameDecoder throughput on a stream of small inv frames and on 1 MB block frames, fed in
 * 64 KiB chunks as a socket delivers them, with the checksum policies `always` and `lazy`,
 * next to a baseline measured in the same run: a splitter that only reads the 24-byte
 * header's length field and slices (no magic, command or checksum checks, no Frame objects).
 */
import { randomBytes } from 'node:crypto';
import { FrameDecoder, HEADER_SIZE, NETWORKS, encodeFrame, type ChecksumPolicy } from '../src/codec/index.js';
import { chunks, throughputs, type BenchOptions, type BenchRow } from './lib.js';

const CHUNK = 64 * 1024;
const INV_FRAMES = 200_000;
const BLOCK_FRAMES = 16;
const BLOCK_PAYLOAD = 1_000_000;

/** One inv entry (MSG_WITNESS_TX + a random hash): 1 + 36 payload bytes, 61 bytes on the wire. */
function invStream(count: number): Buffer {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const payload = Buffer.allocUnsafe(37);
    payload[0] = 1;
    payload.writeUInt32LE(0x40000001, 1);
    randomBytes(32).copy(payload, 5);
    frames.push(encodeFrame(NETWORKS.mainnet, 'inv', payload).raw);
  }
  return Buffer.concat(frames);
}

function blockStream(count: number): Buffer {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) frames.push(encodeFrame(NETWORKS.mainnet, 'block', randomBytes(BLOCK_PAYLOAD)).raw);
  return Buffer.concat(frames);
}

/**
 * The baseline: split a chunked stream on the header's length field only. Like the decoder it
 * is fed chunk by chunk, hands out views for frames inside a chunk and assembles a frame
 * spread over chunks once, so the difference to FrameDecoder is the validation, the checksum
 * and the Frame objects.
 */
export class LengthSplitter {
  readonly #header = Buffer.alloc(HEADER_SIZE);
  #headerFill = 0;
  #partial: Buffer | null = null;
  #partialFill = 0;

  constructor(private readonly onFrame: (raw: Buffer) => void) {}

  push(chunk: Buffer): void {
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
        this.onFrame(raw);
        continue;
      }
      if (this.#headerFill > 0 || len - pos < HEADER_SIZE) {
        const take = Math.min(HEADER_SIZE - this.#headerFill, len - pos);
        chunk.copy(this.#header, this.#headerFill, pos, pos + take);
        this.#headerFill += take;
        pos += take;
        if (this.#headerFill < HEADER_SIZE) return;
        this.#headerFill = 0;
        const raw = Buffer.allocUnsafe(HEADER_SIZE + this.#header.readUInt32LE(16));
        this.#header.copy(raw, 0);
        if (raw.length === HEADER_SIZE) this.onFrame(raw);
        else {
          this.#partial = raw;
          this.#partialFill = HEADER_SIZE;
        }
        continue;
      }
      const end = pos + HEADER_SIZE + chunk.readUInt32LE(pos + 16);
      if (end <= len) {
        this.onFrame(chunk.subarray(pos, end));
        pos = end;
      } else {
        this.#partial = Buffer.allocUnsafe(end - pos);
        chunk.copy(this.#partial, 0, pos, len);
        this.#partialFill = len - pos;
        return;
      }
    }
  }
}

function splitAll(input: readonly Buffer[]): { frames: number; bytes: number } {
  let frames = 0;
  let bytes = 0;
  const splitter = new LengthSplitter((raw) => {
    frames++;
    bytes += raw.length;
  });
  for (const c of input) splitter.push(c);
  return { frames, bytes };
}

function decodeAll(input: readonly Buffer[], checksum: ChecksumPolicy): { frames: number; bytes: number } {
  let frames = 0;
  let bytes = 0;
  const decoder = new FrameDecoder(
    { network: NETWORKS.mainnet, checksum },
    {
      onFrame: (f) => {
        frames++;
        bytes += f.raw.length;
      },
      onError: (e) => {
        throw e;
      },
    },
  );
  for (const c of input) decoder.push(c);
  return { frames, bytes };
}

/** Each timed sample makes `passes` passes over the stream, so that the fastest sample is not lost in timer and GC noise. */
function measureStream(label: string, stream: Buffer, frameCount: number, passes: number, runs: number): BenchRow[] {
  const input = chunks(stream, CHUNK);
  const repeat = (pass: () => void) => () => {
    for (let i = 0; i < passes; i++) pass();
  };
  const check = (r: { frames: number; bytes: number }) => {
    if (r.frames !== frameCount || r.bytes !== stream.length) throw new Error(`${label}: saw ${r.frames} frames / ${r.bytes} bytes`);
  };
  const [base, ...decoders] = throughputs(
    [
      { name: `baseline length splitter, ${label}`, fn: repeat(() => check(splitAll(input))) },
      ...(['always', 'lazy'] as const).map((policy) => ({ name: `FrameDecoder ${policy}, ${label}`, fn: repeat(() => check(decodeAll(input, policy))) })),
    ],
    stream.length * passes,
    frameCount * passes,
    runs,
  );
  const rows: BenchRow[] = [
    { group: 'codec', name: base!.name, mbPerSec: base!.mbPerSec, perSec: base!.perSec, ratio: 1, note: `${frameCount} frames, ${(stream.length / 1e6).toFixed(1)} MB, 64 KiB chunks, ${passes} passes per sample` },
  ];
  for (const t of decoders) rows.push({ group: 'codec', name: t.name, mbPerSec: t.mbPerSec, perSec: t.perSec, ratio: t.mbPerSec / base!.mbPerSec });
  return rows;
}

export function benchCodec(options: BenchOptions): BenchRow[] {
  return [
    ...measureStream('inv 61 B', invStream(INV_FRAMES), INV_FRAMES, 1, options.runs),
    ...measureStream('block 1 MB', blockStream(BLOCK_FRAMES), BLOCK_FRAMES, 4, options.runs),
  ];
}
