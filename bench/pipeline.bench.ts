/**
 * One direction's pipeline in process, no sockets: 64 KB reads of back-to-back 250 B frames
 * through 0, 1 and 5 pass-through hooks (each a separate function, as separately loaded hook
 * modules are). What the proxy's own JavaScript costs a frame, without the kernel's share that
 * dominates the socket benches. A frame a read splits is carried over to the next read, as
 * LendingReadBuffer does.
 */
import type { Socket } from 'node:net';
import { NETWORKS, encodeFrame } from '../src/codec/index.js';
import { HookChain, type LoadedHook } from '../src/hooks/chain.js';
import type { HookContext, HookModule } from '../src/hooks/api.js';
import { Pipeline, type FrameStage, type PipelineHost, type ReadBuffer } from '../src/proxy/pipeline.js';
import type { FrameWriter } from '../src/proxy/transport/types.js';
import { v1Transport } from '../src/proxy/transport/v1.js';
import { medianSeconds, type BenchOptions, type BenchRow } from './lib.js';

const net = NETWORKS.regtest;
const FRAMES = 20_000;
const READ = 64 * 1024;

export function benchPipeline(opts: BenchOptions): BenchRow[] {
  const frame = Buffer.from(encodeFrame(net, 'tx', Buffer.alloc(226, 1)).raw);
  const stream = Buffer.concat(Array.from({ length: FRAMES }, () => frame));
  const counts = [0, 1, 5];
  const candidates = counts.map((n) => {
    const feed = pipelineWith(n);
    return { name: `${n} hooks`, fn: () => feed(stream) };
  });
  const seconds = medianSeconds(candidates, opts.runs);
  return counts.map((n, i) => ({
    group: 'pipeline',
    name: `${n} pass-through hook${n === 1 ? '' : 's'}: 250 B frames`,
    perSec: FRAMES / seconds[i]!,
    ...(i > 0 ? { ratio: seconds[0]! / seconds[i]! } : {}),
    note: `${((seconds[i]! / FRAMES) * 1e9).toFixed(1)} ns a frame`,
  }));
}

/** A pipeline with `n` pass-through hooks; returns a function that pushes a stream through it in 64 KB reads. */
function pipelineWith(n: number): (stream: Buffer) => void {
  const hooks: LoadedHook[] = Array.from({ length: n }, (_, i) => ({
    name: `pass${i}`,
    // a function of its own per hook (a separate script), as each loaded module has
    module: (0, eval)(`({ apiVersion: 1, name: 'pass${i}', onMessage() { return undefined; } })`) as HookModule<unknown>,
    ctx: {} as HookContext,
    source: '',
    wants: { inbound: '*', outbound: null },
  }));
  const chain = new HookChain(hooks, { network: net, maxMessageSize: 4_000_000, timeoutMs: 1000 });
  const host = {
    chain,
    closed: false,
    hookPeer: {},
    countFrames() {},
    frameError(_d: unknown, e: Error) {
      throw e;
    },
    overBudget: () => false,
    budgetRefilled: () => Promise.resolve(),
    hookLog() {},
    push() {},
    misbehave() {},
    ban() {},
    disconnect() {},
    fault(f: Error) {
      throw f;
    },
  } as unknown as PipelineHost;
  const stage: FrameStage = { intercepts: () => false, mayIntercept: () => false, enter: (f) => f, forwarded() {} };
  const writer: FrameWriter = { cutThrough: true, frame() {}, bytes() {}, frameEnd() {}, inject() {}, holdInjected() {}, flush() {}, cork() {}, uncork() {} };
  let carried = 0;
  const reads: ReadBuffer = {
    lend() {},
    carry(_chunk, bytes) {
      carried = bytes;
      return true;
    },
  };
  const src = { pause() {}, isPaused: () => false, resume() {} } as unknown as Socket;
  const p = new Pipeline({ direction: 'inbound', network: net, transport: v1Transport({ network: net }), src, out: writer, hookQueue: 1 << 20, reads }, host, stage);
  const buf = Buffer.alloc(2 * READ);
  return (stream) => {
    for (let off = 0; off < stream.length; ) {
      // the carried bytes first, then the read (the real buffer moves them; here they are copied again)
      const k = carried;
      carried = 0;
      const n = Math.min(READ, stream.length - off);
      stream.copy(buf, 0, off - k, off + n);
      p.push(buf.subarray(0, k + n));
      off += n;
    }
    carried = 0;
  };
}
