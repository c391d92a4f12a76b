/**
 * Backpressure with a hook that holds the lane. Each time an async hook settles, the lane releases
 * the frames it held; the socket it had read them from must stay paused while the other socket's
 * buffer is full, or the proxy keeps reading into a queue that nobody takes: toward a peer that
 * never reads (~20 MB of headers it asked litecoind for), or toward a litecoind that stopped
 * reading a flooding peer.
 *
 * Real implementations: a regtest litecoind (Bitcoin Core 0.21's P2P code) as the backend,
 * answering getheaders; our P2P client as the peer (it stops reading after the handshake).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { hashFromHex } from '../../src/codec/index.js';
import { HOOK_API_VERSION } from '../../src/hooks/api.js';
import { cleanupStack } from '../support/cleanup.js';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { sleep, waitFor } from '../support/wait.js';

const skip = litecoindSkipReason();
const BUFFER = 256 * 1024;
/** what may wait behind the hook besides: released frames go to the socket's buffer, whole */
const HOOK_QUEUE = 256 * 1024;
const BOUND = BUFFER + HOOK_QUEUE + 256 * 1024;

/**
 * litecoind with ~400 blocks (a getheaders answer is then ~32 KB; litecoin regtest cannot mine
 * past 431 here), the proxy with a hook that wants `wants` and passes each frame a turn of the
 * event loop later (it holds the lane meanwhile), and a peer past its handshake that from now on
 * reads nothing.
 */
async function stuckPeer(t: Parameters<typeof cleanupStack>[0], wants: string, nodeArgs: string[]) {
  const steps = cleanupStack(t);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-lane-bp-'));
  steps.push(() => rmSync(dir, { recursive: true, force: true }));
  const hook = path.join(dir, 'async-pass.mjs');
  writeFileSync(hook, `export default { apiVersion: ${JSON.stringify(HOOK_API_VERSION)}, name: "async-pass", wants: ${wants}, onMessage: () => new Promise((r) => setImmediate(r)) };\n`);
  const node = await startLitecoind({ name: 'lane-bp', disableWallet: false, extraArgs: nodeArgs });
  steps.push(() => node.stop());
  await node.generate(400);
  const limits = ['limits:', `  sendBuffer: ${BUFFER}`, `  receiveBuffer: ${BUFFER}`, `  hookQueue: ${HOOK_QUEUE}`];
  const proxy = await startTestProxy(node.p2pPort, [...limits, `hooks:\n  - module: ${JSON.stringify(hook)}`].join('\n'));
  steps.push(() => proxy.close());
  const c = await P2PClient.connect(proxy.port);
  steps.push(() => c.close());
  c.socket.on('error', () => {});
  await c.handshake();
  const session = await waitFor(() => proxy.proxy.sessions().find((s) => s.info.port === c.socket.localPort), 2000, 'the session');
  c.socket.pause();
  return { c, session, genesis: hashFromHex(await node.getBlockHash(0)) };
}

test('a never-reading peer and an async hook on what litecoind sends it: the queue toward the peer stays bounded', { skip, timeout: 90_000 }, async (t) => {
  const { c, session, genesis } = await stuckPeer(t, '{ outbound: ["headers"] }', []);
  // 650 answers of ~32 KB: ~21 MB the peer never takes
  const maxQueued = await watchQueue(() => session.peer.writableLength, () => {
    for (let i = 0; i < 650; i++) c.send('getheaders', { version: 70016, locator: [genesis], hashStop: Buffer.alloc(32) });
  });
  assert.equal(session.closed, false, 'slow is not a crime');
  assert.ok(maxQueued < BOUND, `queued toward the peer stayed below sendBuffer + hookQueue + 256 KiB (${maxQueued})`);
});

test('a peer flooding litecoind past what it reads, and an async hook on the flood: the queue toward litecoind stays bounded', { skip, timeout: 90_000 }, async (t) => {
  // litecoind stops reading a peer once 100 KB of its messages wait unprocessed, and stops
  // processing them while its answers to the peer cannot be sent (they cannot: the peer never reads)
  const { c, session, genesis } = await stuckPeer(t, '{ inbound: ["getheaders"] }', ['-maxreceivebuffer=100']);
  // 8,000 getheaders of 100 locator hashes (Core's most is 101; unknown ones are skipped): ~26 MB
  // toward a node that soon reads none of it, more than the loopback buffers in between take
  const locator = [...Array.from({ length: 99 }, (_, i) => Buffer.alloc(32, i + 1)), genesis];
  const maxQueued = await watchQueue(() => session.backend.writableLength, () => {
    for (let i = 0; i < 8000; i++) c.send('getheaders', { version: 70016, locator, hashStop: Buffer.alloc(32) });
  });
  assert.equal(session.closed, false);
  assert.ok(maxQueued < BOUND, `queued toward litecoind stayed below receiveBuffer + hookQueue + 256 KiB (${maxQueued})`);
});

/** The largest `queued()` while `flood()` runs and for 2 s after the queue first reaches BUFFER. */
async function watchQueue(queued: () => number, flood: () => void): Promise<number> {
  let max = 0;
  const watch = setInterval(() => (max = Math.max(max, queued())), 2);
  try {
    flood();
    await waitFor(() => max >= BUFFER, 20_000, 'the queue to reach its bound');
    await sleep(2000); // stuck: it must not grow
    return Math.max(max, queued());
  } finally {
    clearInterval(watch);
  }
}
