/**
 * Whole-session fuzzing: random and mutated frames and payloads from many peers, over real
 * sockets, through the proxy with every bundled hook enabled, while a well-behaved peer is
 * served throughout (its pings answered) and the proxy's memory stays bounded.
 *
 * Real implementations: the backend is a real regtest litecoind (Bitcoin Core 0.21 P2P code)
 * with 30 blocks; the seed corpus is real P2P traffic recorded between litecoind 0.21 and
 * bcoin 1.0.2 (test/fixtures/real-p2p/, decoded with our FrameDecoder); the hooks are the
 * shipped modules (hooks/*.ts, compiled) loaded by path as an operator would; the peers are
 * our raw P2P client (test/support/p2p-client.ts). fast-check drives the cases with a fixed seed.
 *
 * Bounded to about 30 s by default; BHP_FUZZ_LONG=1 runs 10 minutes (BHP_FUZZ_SECONDS sets
 * another length) and prints the figures docs/reliability.md quotes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { FrameDecoder, NETWORKS, encodeFrame, type Frame } from '../../src/codec/index.js';
import { X_FEATURE_ID } from '../../src/hooks/index.js';
import { connectPeer, connectXPeer, hooksYaml, invocations } from '../hooks/support.js';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { P2PClient, loopbackAddress } from '../support/p2p-client.js';
import { Pinger, percentile } from '../support/pinger.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { fileSeed } from '../support/seed.js';
import { sleep, waitFor } from '../support/wait.js';

// this file's own seed (BHP_TEST_SEED explores others); other files' draws never change it
fc.configureGlobal({ seed: fileSeed(import.meta.url) });
const SEED = fileSeed(import.meta.url);
const LONG = process.env.BHP_FUZZ_LONG === '1';
const SECONDS = Number(process.env.BHP_FUZZ_SECONDS ?? (LONG ? 600 : 25));
/** the proxy process (test and proxy in one) must stay below this resident size */
const MAX_RSS_BYTES = 768 * 1024 * 1024;
const regtest = NETWORKS.regtest;
const here = path.dirname(fileURLToPath(import.meta.url));
const HOOKS = path.resolve(here, '../../hooks');
const FIXTURES = path.resolve(here, '../../../test/fixtures/real-p2p');

/** Every frame of the recorded real traffic, each distinct command+payload once. */
function realCorpus(): Frame[] {
  const seen = new Set<string>();
  const frames: Frame[] = [];
  for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.bin'))) {
    const decoder = new FrameDecoder(
      { network: regtest, checksum: 'always' },
      {
        onFrame: (f) => {
          const key = `${f.command} ${f.payload.toString('hex')}`;
          if (!seen.has(key)) frames.push(f.copy());
          seen.add(key);
        },
        onError: (e) => {
          throw e;
        },
      },
    );
    decoder.push(readFileSync(path.join(FIXTURES, file)));
  }
  // what only our own peers send: x: requests and BIP 434 feature messages
  for (const [command, payload] of [
    ['x:hello', Buffer.alloc(8, 7)],
    ['x:stats', Buffer.alloc(0)],
    ['x:nosuch', Buffer.alloc(3)],
    ['feature', Buffer.concat([Buffer.from([X_FEATURE_ID.length]), Buffer.from(X_FEATURE_ID), Buffer.from([0])])],
    ['mempool', Buffer.alloc(0)],
  ] as const) {
    frames.push(encodeFrame(regtest, command, payload));
  }
  return frames;
}

const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
const commandArb = fc.oneof(
  fc.constantFrom('version', 'verack', 'ping', 'pong', 'inv', 'getdata', 'getheaders', 'headers', 'block', 'tx', 'addr', 'addrv2', 'mempool', 'getaddr', 'feature', 'sendcmpct', 'cmpctblock', 'getblocktxn', 'filterload', 'notfound'),
  fc.constantFrom('x:hello', 'x:stats', 'x:nosuch', 'x:', 'constructor', '__proto__'),
  fc.string({ unit: printable, minLength: 1, maxLength: 12 }),
);

type Mutation =
  | { m: 'flip'; at: number; bit: number }
  | { m: 'truncate'; at: number }
  | { m: 'append'; bytes: Uint8Array }
  | { m: 'overwrite'; at: number; bytes: Uint8Array }
  | { m: 'command'; command: string };
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ m: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ m: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ m: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }) },
  { weight: 2, arbitrary: fc.record({ m: fc.constant('overwrite' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ m: fc.constant('command' as const), command: commandArb }) },
);

/** How one frame of a case is made; `frame` breaks the framing itself (header bytes, checksum). */
type Op =
  | { kind: 'corpus'; index: number; mutations: Mutation[]; breakFraming: boolean }
  | { kind: 'random'; command: string; payload: Uint8Array }
  | { kind: 'raw'; bytes: Uint8Array };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('corpus' as const), index: fc.nat(), mutations: fc.array(mutationArb, { maxLength: 4 }), breakFraming: fc.nat({ max: 15 }).map((n) => n === 0) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('random' as const), command: commandArb, payload: fc.uint8Array({ maxLength: 600 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('raw' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 80 }) }) },
);
const caseArb = fc.record({
  handshake: fc.constantFrom('none', 'plain', 'plain', 'x', 'x'),
  ops: fc.array(opArb, { minLength: 1, maxLength: 40 }),
  /** cut points (fractions of the stream) for the writes */
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
});

function mutatePayload(payload: Buffer, ms: Mutation[]): { command?: string; payload: Buffer } {
  let p = Buffer.from(payload);
  let command: string | undefined;
  for (const m of ms) {
    if (m.m === 'flip' && p.length > 0) p[m.at % p.length] = p[m.at % p.length]! ^ (1 << m.bit);
    else if (m.m === 'truncate') p = p.subarray(0, p.length === 0 ? 0 : m.at % p.length);
    else if (m.m === 'append') p = Buffer.concat([p, m.bytes]);
    else if (m.m === 'overwrite' && p.length > 0) Buffer.from(m.bytes).copy(p, m.at % p.length);
    else if (m.m === 'command') command = m.command;
  }
  return { command, payload: p };
}

function opBytes(op: Op, corpus: Frame[]): Buffer {
  if (op.kind === 'raw') return Buffer.from(op.bytes);
  if (op.kind === 'random') return Buffer.from(encodeFrame(regtest, op.command, Buffer.from(op.payload)).raw);
  const base = corpus[op.index % corpus.length]!;
  const { command, payload } = mutatePayload(base.payload, op.mutations);
  const raw = Buffer.from(encodeFrame(regtest, command ?? base.command, payload).raw);
  if (op.breakFraming) {
    // one header byte (magic, command, length or checksum) flipped
    const at = (op.index >>> 3) % 24;
    raw[at] = raw[at]! ^ (1 << (op.index & 7));
  }
  return raw;
}

function cut(stream: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * stream.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    if (p > prev) out.push(stream.subarray(prev, p));
    prev = Math.max(prev, p);
  }
  out.push(stream.subarray(prev));
  return out;
}

test('session fuzz: random and mutated frames through every bundled hook; a well-behaved peer is served throughout, memory bounded', { skip: litecoindSkipReason(), timeout: (SECONDS + 120) * 1000 }, async (t) => {
  const corpus = realCorpus();
  const node = await startLitecoind({ name: 'fuzz', disableWallet: false });
  t.after(() => node.stop());
  await node.generate(30);
  const captureDir = mkdtempSync(path.join(os.tmpdir(), 'bhp-fuzz-capture-'));
  t.after(() => rmSync(captureDir, { recursive: true, force: true }));
  const hook = (name: string) => path.join(HOOKS, `${name}.js`);
  const proxy = await startTestProxy(
    node.p2pPort,
    [
      'checksum: lazy',
      'limits: { maxPeers: 1000, maxPeersPerSubnet: 1000, handshakeTimeout: 3s, hookTimeout: 2s }',
      'bans: { threshold: 100, duration: 1h }',
      hooksYaml([
        { module: hook('peer-filter'), options: { minVersion: 70001, userAgent: { deny: ['^/evil'] } } },
        { module: hook('message-filter'), options: { inbound: { deny: ['mempool'] }, action: 'drop' } },
        {
          module: hook('rate-limit'),
          options: { action: 'drop', tiers: { default: { peer: { ping: { rate: 50, burst: 100 }, getdata: { rate: 20, burst: 200 }, addr: { rate: 0.1, burst: 10 } }, address: { '*': { rate: 500, burst: 5000, action: 'disconnect' } } } } },
        },
        { module: hook('block-cache'), options: { maxBytes: '8MiB', txMaxBytes: '1MiB' } },
        { module: hook('features'), options: {} },
        { module: hook('example-mempool-guard'), options: {} },
        { module: hook('capture'), options: { dir: captureDir, commands: '*', maxFileBytes: '256KiB', keep: 2, maxTotalBytes: '4MiB' } },
      ]),
    ].join('\n'),
  );
  t.after(() => proxy.close());
  assert.equal(proxy.proxy.chain.hooks.length, 7, 'every bundled hook is in the chain');

  const good = (await connectXPeer(proxy.port)).client;
  t.after(() => good.close());
  const pinger = new Pinger(good, 100, 10_000);
  t.after(() => pinger.stop());

  let frames = 0;
  let bytes = 0;
  let cases = 0;
  let peakRss = process.memoryUsage().rss;
  let nextAddress = 0;
  const started = Date.now();

  await fc.assert(
    fc.asyncProperty(caseArb, async (c) => {
      cases++;
      const localAddress = loopbackAddress(nextAddress++ % 60_000);
      let client: P2PClient;
      try {
        client =
          c.handshake === 'x'
            ? (await connectXPeer(proxy.port, localAddress)).client
            : c.handshake === 'plain'
              ? (await connectPeer(proxy.port, { localAddress })).client
              : await P2PClient.connect(proxy.port, { localAddress });
      } catch (err) {
        throw new Error(`a fresh peer could not connect and handshake: ${(err as Error).message}`);
      }
      client.socket.on('error', () => {});
      try {
        const stream = Buffer.concat(c.ops.map((op) => opBytes(op, corpus)));
        frames += c.ops.length;
        bytes += stream.length;
        for (const piece of cut(stream, c.cuts)) {
          client.sendRaw(piece);
          await sleep(0);
        }
        // let the proxy work through it: a pong, or the peer closed, or a short wait
        if (!client.isClosed) await client.ping(1500).catch(() => undefined);
      } finally {
        await client.close();
      }
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      assert.equal(good.isClosed, false, 'the well-behaved peer is still connected');
      assert.deepEqual(pinger.failures, [], 'every ping of the well-behaved peer was answered');
      assert.ok(peakRss < MAX_RSS_BYTES, `RSS ${peakRss} below ${MAX_RSS_BYTES}`);
    }),
    { seed: SEED, numRuns: 1_000_000, interruptAfterTimeLimit: SECONDS * 1000, markInterruptAsFailure: false, endOnFailure: true },
  );

  // no session left behind: only the well-behaved peer remains
  await waitFor(() => proxy.proxy.sessions().length === 1, 10_000, 'the fuzz sessions to be gone');
  const before = pinger.rtts.length;
  await waitFor(() => pinger.rtts.length >= before + 3, 10_000, 'three more pongs after the fuzzing');
  await pinger.stop();
  assert.deepEqual(pinger.failures, []);
  assert.ok(cases >= 20, `ran ${cases} cases`);
  const hookErrors = await proxy.metricValue('bhp_hook_errors_total');
  t.diagnostic(
    `seed ${SEED}: ${cases} cases, ${frames} frames, ${bytes} bytes in ${((Date.now() - started) / 1000).toFixed(0)} s; peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB; ` +
      `well-behaved peer ${pinger.rtts.length} pongs, p50 ${percentile(pinger.rtts, 50).toFixed(1)} ms, p99 ${percentile(pinger.rtts, 99).toFixed(1)} ms; ` +
      `hook errors ${hookErrors}; protocol errors ${await proxy.metricValue('bhp_protocol_errors_total')}; bans ${await proxy.metricValue('bhp_bans_added_total')}`,
  );
  const calls = await Promise.all(proxy.proxy.chain.hooks.map(async (h) => `${h.name} ${await invocations(proxy, h.name)}`));
  const closed = (await proxy.metrics.registry.getSingleMetric('bhp_connections_closed_total')?.get())?.values.map((v) => `${String(v.labels.reason)} ${v.value}`);
  t.diagnostic(`hook calls: ${calls.join(', ')}; sessions closed: ${closed?.join(', ')}`);
  assert.equal(hookErrors, 0, 'no shipped hook broke its contract on fuzzed input');
});
