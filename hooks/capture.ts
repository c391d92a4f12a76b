/**
 * capture: writes the messages of chosen peers and commands, both directions, to disk in the
 * format of bitcoind's -capturemessages, so the tools for that format (Bitcoin Core's
 * contrib/message-capture/message-capture-parser.py) read it:
 *
 *   <dir>/<address>_<port>/msgs_recv.dat   what bitcoind received from the peer (inbound)
 *   <dir>/<address>_<port>/msgs_sent.dat   what bitcoind sent to the peer (outbound)
 *
 * records of time (µs since the epoch, uint64 LE), 12-byte command, payload length (uint32 LE)
 * and payload; folder names as bitcoind makes them (ToStringAddrPort with ':' → '_').
 * Bounded: rotation per file (msgs_recv.1.dat, .2.dat ... `keep` of them), a total cap, and a
 * bounded write buffer. Writing is asynchronous and batched (hooks/lib/capture-store.ts): a
 * message costs one copy of its payload into the buffer; when the disk cannot keep up the
 * buffer fills and later records are dropped and counted. The peer is never made to wait.
 * docs/hooks/capture.md has the options.
 */
import { randomUUID } from 'node:crypto';
import { access, constants, mkdir } from 'node:fs/promises';
import { z } from 'zod';
import { defineHook, HOOK_API_VERSION, type HookCounter, type HookPeer } from '../src/hooks/index.js';
import { AddressList, parseEntry } from './lib/address-list.js';
import { CaptureStore, captureFolderName } from './lib/capture-store.js';
import { byteSize, commandName } from './lib/common.js';

const NAME = 'capture';

/** A size in bytes, at least `min` (the proxy's size units: "16MiB" IEC, "64MB" SI). */
const sizeAtLeast = (min: number) => byteSize.pipe(z.number().min(min, `at least ${min} bytes`).max(2 ** 50));

const address = z.string().superRefine((s, ctx) => {
  try {
    parseEntry(s.trim());
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const Options = z.strictObject({
  /** the folder that plays bitcoind's <datadir>/message_capture */
  dir: z.string().min(1),
  /** addresses or CIDRs of the peers to capture; absent: every peer */
  peers: z.array(address).optional(),
  /** commands to capture; "*" for all */
  commands: z.union([z.literal('*'), z.array(commandName).min(1)]).default('*'),
  directions: z
    .array(z.enum(['inbound', 'outbound']))
    .min(1)
    .default(['inbound', 'outbound']),
  maxFileBytes: sizeAtLeast(1024).default(16 * 1024 ** 2),
  keep: z.number().int().min(0).max(1000).default(4),
  maxTotalBytes: sizeAtLeast(1024).default(1024 ** 3),
  maxBufferBytes: sizeAtLeast(1024).default(8 * 1024 ** 2),
});
export type CaptureOptions = z.input<typeof Options>;


let store: CaptureStore;
let peers: AddressList | null;
/** per-peer state key of this instance (a reload or a second capture hook decides afresh) */
let folderKey: string;

/** Microseconds since the epoch, finer than Date.now() so that records of one millisecond keep their order across files. */
function nowMicros(): bigint {
  return BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
}

/** The peer's folder, or null when it is not captured; decided once per peer. */
function folderOf(peer: HookPeer): string | null {
  let folder = peer.state.get(folderKey) as string | null | undefined;
  if (folder === undefined) {
    folder = peers === null || peers.has(peer.address) ? captureFolderName(peer.address, peer.port) : null;
    peer.state.set(folderKey, folder);
  }
  return folder;
}

export default defineHook({
  apiVersion: HOOK_API_VERSION,
  name: NAME,
  options: Options,
  wants: (o) => Object.fromEntries(o.directions.map((d) => [d, o.commands])),

  async init(o, ctx) {
    try {
      await mkdir(o.dir, { recursive: true });
      await access(o.dir, constants.W_OK);
    } catch (err) {
      // node's own message ("EEXIST: file already exists, mkdir") does not say which option or what is wrong
      throw new Error(`options.dir: ${o.dir} is not a writable folder (${(err as Error).message})`);
    }
    folderKey = `${NAME}.folder.${randomUUID()}`;
    peers = null;
    if (o.peers) {
      peers = new AddressList();
      for (const p of o.peers) peers.add(p);
    }
    const records: HookCounter = ctx.metrics.counter('capture_records_total', 'messages written to capture files', ['direction']);
    const bytes: HookCounter = ctx.metrics.counter('capture_bytes_total', 'bytes written to capture files (records with their 24-byte headers)', ['direction']);
    const dropped: HookCounter = ctx.metrics.counter('capture_dropped_total', 'messages not captured', ['reason']);
    const rotations: HookCounter = ctx.metrics.counter('capture_rotations_total', 'capture files rotated');
    const buffered = ctx.metrics.gauge('capture_buffered_bytes', 'bytes of records waiting to be written');
    const disk = ctx.metrics.gauge('capture_disk_bytes', 'bytes of the capture files this hook knows of');
    let lastError = 0;
    store = new CaptureStore(o.dir, o, {
      written: (kind, n, b) => {
        const direction = kind === 'recv' ? 'inbound' : 'outbound';
        records.inc({ direction }, n);
        bytes.inc({ direction }, b);
      },
      dropped: (reason, n) => dropped.inc({ reason }, n),
      rotated: () => rotations.inc(),
      levels: (b, d) => {
        buffered.set(b);
        disk.set(d);
      },
      error: (file, err) => {
        // at most one line a minute: a full disk must not flood the log
        if (Date.now() - lastError < 60_000) return;
        lastError = Date.now();
        ctx.log.error('capture write failed; dropping what was queued for this file', { file, err: err.message });
      },
    });
    ctx.log.info('capturing', { dir: o.dir, peers: o.peers ?? 'all', commands: o.commands, directions: o.directions });
  },

  onMessage(msg, peer) {
    const folder = folderOf(peer);
    if (folder !== null) store.add(folder, msg.direction === 'inbound' ? 'recv' : 'sent', { timeMicros: nowMicros(), command: msg.command, payload: msg.payload });
  },

  onDisconnect(peer) {
    const folder = peer.state.get(folderKey);
    if (typeof folder === 'string') store.release(folder);
  },

  close() {
    return store.close();
  },
});
