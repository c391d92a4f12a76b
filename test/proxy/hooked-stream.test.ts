/**
 * Frames hooks want, in a stream of thousands split across socket reads at random places: the
 * hooks see each payload whole and in order, the node gets every byte once, and the proxy's
 * byte counters count each byte once. The proxy carries a frame split across reads over into the
 * next read's buffer (LendingReadBuffer.carry) and hands frames to hooks as ranges of the read
 * (no Frame made for them): this is where a mistake in either would show.
 *
 * Real implementation: litecoind 0.21 from Debian (Bitcoin Core 0.21's P2P code) behind the
 * proxy; its `getpeerinfo` byte counters per message and its pongs are the node's view. The peer
 * is our raw P2P client (test/support/p2p-client.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { NETWORKS, decodeMessage, encodeFrame } from '../../src/codec/index.js';
import type { PeerInfo } from '../../src/proxy/peer-info.js';
import { fixtureState } from '../hooks/fixtures/state.js';
import { fixture, hooksYaml } from '../hooks/support.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { filePrng } from '../support/seed.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { waitFor } from '../support/wait.js';

const skip = litecoindSkipReason();
const regtest = NETWORKS.regtest;
const rand = filePrng(import.meta.url);

let node: Litecoind;
before(async () => {
  if (!skip) node = await startLitecoind({ name: 'hooked-stream', disableWallet: true });
});
after(async () => {
  await node?.stop();
});

const digest = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').slice(0, 16);

test('hooked frames split across reads anywhere: hooks see every payload whole, the node every byte once, counters count once', { skip, timeout: 180_000 }, async (t) => {
  const label = 'hooked-stream';
  const proxy = await startTestProxy(
    node.p2pPort,
    // one hook reads the fillers' bytes (their read is then lent), one only looks at every command
    // (a read of pings alone is reused: the carried bytes move to its start)
    `limits: { hookBudget: off }\n${hooksYaml([
      { module: fixture('payloads'), options: { label, inbound: ['filler'], outbound: ['pong'] } },
      { module: fixture('wants'), options: { label: `${label}-names`, inbound: ['ping', 'filler'], outbound: ['pong'] } },
    ])}`,
  );
  t.after(() => proxy.close());
  const c = await P2PClient.connect(proxy.port);
  t.after(() => c.close());
  await c.handshake(20_000);
  const before = (await node.getPeerInfo()).find((p) => p.version > 0)!;

  // pings (32-byte frames), and fillers of 1 byte to 30 KB among them (some over the 16 KB carry limit);
  // litecoind ignores the unknown command and answers every ping in order
  const frames: Buffer[] = [];
  const expected: string[] = [];
  const nonces: bigint[] = [];
  let fillerBytes = 0;
  // stretches of pings alone (their reads are reused) between mixed stretches (their reads are lent)
  for (let i = 0; i < 26_000; i++) {
    if (Math.floor(i / 6500) % 2 === 0 || rand() < 0.85) {
      const nonce = BigInt(Math.floor(rand() * 2 ** 32)) * 2n ** 32n + BigInt(i);
      const payload = Buffer.alloc(8);
      payload.writeBigUInt64LE(nonce);
      frames.push(Buffer.from(encodeFrame(regtest, 'ping', payload).raw));
      nonces.push(nonce);
    } else {
      const size = rand() < 0.1 ? 16_000 + Math.floor(rand() * 14_000) : 1 + Math.floor(rand() * 2000);
      const payload = Buffer.alloc(size);
      for (let k = 0; k < size; k++) payload[k] = Math.floor(rand() * 256);
      const f = Buffer.from(encodeFrame(regtest, 'filler', payload).raw);
      frames.push(f);
      fillerBytes += f.length;
      expected.push(`inbound:filler:${digest(payload)}`);
    }
  }
  const stream = Buffer.concat(frames);
  const pongsBefore = c.frames.length;
  // uneven writes: frames straddle the proxy's reads at every kind of offset
  for (let off = 0; off < stream.length; ) {
    const n = Math.min(stream.length - off, 1 + Math.floor(rand() * 100_000));
    if (!c.sendRaw(stream.subarray(off, off + n))) await new Promise((r) => c.socket.once('drain', r));
    off += n;
  }
  await waitFor(() => c.frames.slice(pongsBefore).filter((f) => f.command === 'pong').length >= nonces.length, 60_000, 'every pong');

  const seen = fixtureState().calls.get(label)!.filter((x) => x.startsWith('inbound:'));
  assert.ok(expected.length > 500, 'fillers were sent');
  assert.equal(seen.length, expected.length, 'the reading hook was called once per filler');
  for (let i = 0; i < expected.length; i++) assert.equal(seen[i], expected[i], `filler ${i}: the hook saw the payload that was sent`);
  assert.equal(fixtureState().calls.get(`${label}-names`)!.filter((x) => x.startsWith('inbound:')).length, frames.length, 'the other hook saw every frame');

  const pongs = c.frames.slice(pongsBefore).filter((f) => f.command === 'pong');
  assert.deepEqual(
    pongs.map((f) => decodeMessage('pong', f.payload).nonce),
    nonces,
    'litecoind answered every ping, in order, with its nonce: the pings reached it intact',
  );
  const outbound = fixtureState().calls.get(label)!.filter((x) => x.startsWith('outbound:pong'));
  assert.equal(outbound.length, nonces.length, 'the pongs went through the hooks too');

  const after = (await node.getPeerInfo()).find((p) => p.id === before.id)!;
  const grew = (cmd: string) => (after.bytesrecv_per_msg[cmd] ?? 0) - (before.bytesrecv_per_msg[cmd] ?? 0);
  assert.equal(grew('ping'), 32 * nonces.length, 'the node received each ping frame once');
  assert.equal(grew('*other*'), fillerBytes, 'and each filler byte once');
  // hooks see peers as HookPeer; the session's own counters are on the same object
  const info = (proxy.proxy.peers() as unknown as PeerInfo[]).find((p) => p.bytesIn > 0)!;
  await waitFor(() => info.bytesIn >= stream.length, 5_000, 'counted');
  const sentBefore = info.bytesIn - stream.length;
  assert.ok(sentBefore > 0 && sentBefore < 1000, `the proxy counted the stream's bytes once (handshake ${sentBefore} bytes + ${stream.length})`);
});

test('what a hook pushes to the peer lands after the frames before the one it answered, though the hooks pass them a run at a time', { skip, timeout: 120_000 }, async (t) => {
  const EVERY = 50;
  const proxy = await startTestProxy(node.p2pPort, `limits: { hookBudget: off }\n${hooksYaml([{ module: fixture('marks'), options: { every: EVERY } }])}`);
  t.after(() => proxy.close());
  const c = await P2PClient.connect(proxy.port);
  t.after(() => c.close());
  await c.handshake(20_000);
  const from = c.frames.length;
  // one burst: litecoind's pongs come back many to a read, so the hooks pass them in runs
  const N = 5000;
  const burst = Buffer.concat(
    Array.from({ length: N }, (_, i) => {
      const p = Buffer.alloc(8);
      p.writeBigUInt64LE(BigInt(i + 1));
      return encodeFrame(regtest, 'ping', p).raw;
    }),
  );
  c.sendRaw(burst);
  await waitFor(() => c.frames.slice(from).filter((f) => f.command === 'pong').length >= N, 60_000, 'every pong');
  // (litecoind's own keep-alive pings carry random 64-bit nonces, far above N)
  const seq = c.frames
    .slice(from)
    .filter((f) => f.command === 'pong' || (f.command === 'ping' && f.payload.readBigUInt64LE(0) <= BigInt(N)))
    .map((f) => `${f.command}:${f.payload.readBigUInt64LE(0)}`);
  const expected: string[] = [];
  for (let i = 1; i <= N; i++) {
    // marked: every EVERY-th pong and the one after it (a marked pong right after another is the
    // first of what the hooks run next: nothing of the run goes before it)
    if (i % EVERY === 0 || i % EVERY === 1) expected.push(`ping:${i}`);
    expected.push(`pong:${i}`);
  }
  assert.equal(seq.length, expected.length, 'every pong and every pushed ping');
  for (let i = 0; i < expected.length; i++) assert.equal(seq[i], expected[i], `position ${i}: the push lands right before the pong it answered, after the ones before`);
});
