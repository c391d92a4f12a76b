/**
 * The disk side of the capture hook: per peer folder and direction one append-only file in
 * bitcoind's -capturemessages format, written asynchronously in batches, bounded in memory
 * (records wait in a buffer of at most maxBufferBytes over all files; when it is full new
 * records are dropped and counted, never waited for) and on disk (a file rotates at
 * maxFileBytes to NAME.1.dat, NAME.2.dat ... keeping `keep` old files; new records are dropped
 * while the capture files this store knows of reach maxTotalBytes).
 * add() never blocks: it encodes the record (one copy of the payload) and queues it.
 */
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { codec } from '../../src/hooks/index.js';

export type CaptureFileKind = 'recv' | 'sent';
export type DropReason = 'buffer_full' | 'total_cap' | 'too_large' | 'write_error' | 'closed';

export interface CaptureLimits {
  /** a file rotates before it would grow past this */
  maxFileBytes: number;
  /** rotated files kept per peer and direction (0: the current file is just started again) */
  keep: number;
  /** capture files this store knows of, together, at most this many bytes */
  maxTotalBytes: number;
  /** records waiting to be written, over all files, at most this many bytes */
  maxBufferBytes: number;
}

export interface CaptureEvents {
  written?(kind: CaptureFileKind, records: number, bytes: number): void;
  dropped?(reason: DropReason, records: number): void;
  rotated?(): void;
  /** bytes buffered and bytes on disk changed */
  levels?(bufferedBytes: number, diskBytes: number): void;
  error?(file: string, err: Error): void;
}

/** bitcoind's file names: msgs_recv.dat holds what the node received from the peer, msgs_sent.dat what it sent. */
export function captureFileName(kind: CaptureFileKind, generation = 0): string {
  return generation === 0 ? `msgs_${kind}.dat` : `msgs_${kind}.${generation}.dat`;
}

/**
 * The folder bitcoind names a peer's capture after: CAddress::ToStringAddrPort() with every ':'
 * replaced by '_' (Windows folder names cannot hold a colon): `203.0.113.5_8333`,
 * `[2001_db8__1]_8333`. IPv4-mapped IPv6 addresses are written as IPv4, as bitcoind prints them.
 */
export function captureFolderName(address: string, port: number): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const addr = mapped ? mapped[1]! : address;
  const hostPort = addr.includes(':') ? `[${addr.toLowerCase()}]:${port}` : `${addr}:${port}`;
  return hostPort.replaceAll(':', '_');
}

/** Closed lanes whose file sizes stay counted, remembered so that reopening them does not count them again (oldest forgotten first: then counted twice, never missed). */
const CLOSED_LANES_REMEMBERED = 100_000;

interface Lane {
  readonly dir: string;
  readonly kind: CaptureFileKind;
  readonly queue: Buffer[];
  queued: number;
  handle: FileHandle | null;
  /** size of the current file; of the rotated ones, index i = generation i+1 */
  size: number;
  rotated: number[];
  draining: Promise<void> | null;
  /** close the file once the queue is empty (the peer is gone) */
  release: boolean;
}

export class CaptureStore {
  readonly #lanes = new Map<string, Lane>();
  /** lane key → the sizes #disk counts for its files, for lanes closed since they were counted */
  readonly #closedLanes = new Map<string, Pick<Lane, 'size' | 'rotated'>>();
  #buffered = 0;
  #disk = 0;
  #closed = false;

  constructor(
    readonly root: string,
    readonly limits: CaptureLimits,
    readonly events: CaptureEvents = {},
  ) {}

  get bufferedBytes(): number {
    return this.#buffered;
  }
  get diskBytes(): number {
    return this.#disk;
  }

  /** Queue one record for `folder`/msgs_<kind>.dat. False when it was dropped (and counted). */
  add(folder: string, kind: CaptureFileKind, record: codec.CaptureRecord): boolean {
    const size = codec.CAPTURE_RECORD_HEADER_SIZE + record.payload.length;
    const drop: DropReason | null = this.#closed
      ? 'closed'
      : size > this.limits.maxFileBytes
        ? 'too_large'
        : this.#buffered + size > this.limits.maxBufferBytes
          ? 'buffer_full'
          : this.#disk + this.#buffered + size > this.limits.maxTotalBytes
            ? 'total_cap'
            : null;
    if (drop) {
      this.events.dropped?.(drop, 1);
      return false;
    }
    const key = `${folder}/${kind}`;
    let lane = this.#lanes.get(key);
    if (!lane) {
      const counted = this.#closedLanes.get(key);
      this.#closedLanes.delete(key);
      lane = { dir: path.join(this.root, folder), kind, queue: [], queued: 0, handle: null, size: counted?.size ?? 0, rotated: counted?.rotated ?? [], draining: null, release: false };
      this.#lanes.set(key, lane);
    }
    lane.release = false;
    lane.queue.push(codec.encodeCaptureRecord(record));
    lane.queued += size;
    this.#buffered += size;
    this.#levels();
    lane.draining ??= this.#drain(key, lane);
    return true;
  }

  /** The peer of `folder` is gone: close its files once what is queued is written. */
  release(folder: string): void {
    for (const kind of ['recv', 'sent'] as const) {
      const key = `${folder}/${kind}`;
      const lane = this.#lanes.get(key);
      if (!lane) continue;
      lane.release = true;
      if (!lane.draining) {
        this.#forget(key, lane);
        void lane.handle?.close().catch(() => {});
      }
    }
  }

  /** Resolves when everything queued so far has been written (or dropped on an error). */
  async flush(): Promise<void> {
    for (;;) {
      const pending = [...this.#lanes.values()].map((l) => l.draining).filter((d): d is Promise<void> => d !== null);
      if (pending.length === 0) return;
      await Promise.all(pending);
    }
  }

  /** Write what is queued, close every file; later add()s are dropped. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    await Promise.all([...this.#lanes.values()].map((l) => l.handle?.close().catch(() => {})));
    this.#lanes.clear();
  }

  /** Drop a lane whose peer is gone; its files stay counted in #disk, and so remembered. */
  #forget(key: string, lane: Lane): void {
    this.#lanes.delete(key);
    this.#closedLanes.set(key, { size: lane.size, rotated: lane.rotated });
    if (this.#closedLanes.size > CLOSED_LANES_REMEMBERED) this.#closedLanes.delete(this.#closedLanes.keys().next().value!);
  }

  #levels(): void {
    this.events.levels?.(this.#buffered, this.#disk);
  }

  async #drain(key: string, lane: Lane): Promise<void> {
    try {
      while (lane.queue.length > 0) {
        if (!lane.handle) await this.#open(lane);
        if (lane.size > 0 && lane.size + lane.queue[0]!.length > this.limits.maxFileBytes) await this.#rotate(lane);
        // one batch: the records that still fit in the current file, written with one writev
        let n = 0;
        let bytes = 0;
        while (n < lane.queue.length && lane.size + bytes + lane.queue[n]!.length <= this.limits.maxFileBytes) bytes += lane.queue[n++]!.length;
        const batch = lane.queue.splice(0, n);
        await lane.handle!.writev(batch);
        lane.size += bytes;
        lane.queued -= bytes;
        this.#buffered -= bytes;
        this.#disk += bytes;
        this.events.written?.(lane.kind, batch.length, bytes);
        this.#levels();
      }
    } catch (err) {
      this.events.error?.(path.join(lane.dir, captureFileName(lane.kind)), err as Error);
      this.events.dropped?.('write_error', lane.queue.length);
      this.#buffered -= lane.queued;
      lane.queue.length = 0;
      lane.queued = 0;
      await lane.handle?.close().catch(() => {});
      lane.handle = null;
      this.#levels();
    } finally {
      lane.draining = null;
      if (lane.release && lane.queue.length === 0) {
        this.#forget(key, lane);
        await lane.handle?.close().catch(() => {});
        lane.handle = null;
      }
    }
  }

  /** Open (append) the current file; learn the sizes of it and of its rotated files (a previous run's). */
  async #open(lane: Lane): Promise<void> {
    await mkdir(lane.dir, { recursive: true });
    const sizeOf = (g: number) => stat(path.join(lane.dir, captureFileName(lane.kind, g))).then((s) => s.size, () => -1);
    // files counted before (a reopen after a write error, or a peer back from the same address and port) are counted afresh, not twice
    const counted = lane.size + lane.rotated.reduce((a, b) => a + b, 0);
    lane.handle = await open(path.join(lane.dir, captureFileName(lane.kind)), 'a');
    lane.size = (await lane.handle.stat()).size;
    lane.rotated = [];
    for (let g = 1; g <= this.limits.keep; g++) {
      const s = await sizeOf(g);
      if (s < 0) break;
      lane.rotated.push(s);
    }
    this.#disk += lane.size + lane.rotated.reduce((a, b) => a + b, 0) - counted;
  }

  /** msgs_x.dat → msgs_x.1.dat → msgs_x.2.dat ...; the oldest beyond `keep` is deleted. */
  async #rotate(lane: Lane): Promise<void> {
    await lane.handle!.close();
    lane.handle = null;
    const file = (g: number) => path.join(lane.dir, captureFileName(lane.kind, g));
    const keep = this.limits.keep;
    if (lane.rotated.length >= keep) {
      const gone = keep === 0 ? lane.size : lane.rotated[keep - 1]!;
      await rm(keep === 0 ? file(0) : file(keep), { force: true });
      this.#disk -= gone;
      if (keep > 0) lane.rotated.length = keep - 1;
    }
    if (keep > 0) {
      for (let g = lane.rotated.length; g >= 1; g--) await rename(file(g), file(g + 1));
      await rename(file(0), file(1));
      lane.rotated.unshift(lane.size);
    }
    lane.handle = await open(file(0), 'a');
    lane.size = 0;
    this.events.rotated?.();
  }
}
