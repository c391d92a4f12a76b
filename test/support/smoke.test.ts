/**
 * Proves the real-node harness works: two litecoind sync a chain, and bcoin shakes hands with
 * litecoind (they cannot share a chain: litecoin's regtest genesis differs) and syncs from
 * another bcoin. Every node is stopped in t.after, whatever happens.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBcoin, type BcoinNode } from './bcoin-node.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from './litecoind.js';
import { waitFor } from './wait.js';

const skip = litecoindSkipReason();

test('litecoind: B with -connect=A syncs the 3 blocks A mined', { skip, timeout: 60_000 }, async (t) => {
  const nodes: Litecoind[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.stop())));
  const a = await startLitecoind({ name: 'A' });
  nodes.push(a);
  const hashes = await a.generate(3);
  assert.equal(hashes.length, 3);
  assert.equal(await a.getBlockCount(), 3);
  assert.equal(await a.getBestBlockHash(), hashes[2]);

  const b = await startLitecoind({ name: 'B', extraArgs: [`-connect=${a.p2pAddress}`] });
  nodes.push(b);
  await waitFor(async () => (await b.getBestBlockHash()) === hashes[2], 30_000, 'B to have A best block hash');
  assert.equal(await b.getBlockCount(), 3);

  const [peerOfA] = await a.waitForPeers(1);
  assert.ok(peerOfA);
  assert.equal(peerOfA.inbound, true);
  assert.match(peerOfA.subver, /LitecoinCore:0\.21/);
  const [peerOfB] = await b.getPeerInfo();
  assert.equal(peerOfB?.inbound, false);
  assert.equal(peerOfB?.addr, a.p2pAddress);
});

test('bcoin connects outbound to litecoind and completes the version handshake', { skip, timeout: 60_000 }, async (t) => {
  let ltc: Litecoind | undefined;
  let bc: BcoinNode | undefined;
  t.after(async () => {
    await bc?.stop();
    await ltc?.stop();
  });
  ltc = await startLitecoind({ name: 'ltc', disableWallet: true });
  bc = await startBcoin({ name: 'bcoin' });
  bc.connectTo('127.0.0.1', ltc.p2pPort);
  const [peer] = await bc.waitForPeers(1, 20_000);
  assert.ok(peer);
  assert.equal(peer.outbound, true);
  assert.match(String(peer.agent), /LitecoinCore:0\.21/);
  const [ltcPeer] = await ltc.waitForPeers(1, 20_000);
  assert.ok(ltcPeer);
  assert.equal(ltcPeer.inbound, true);
  assert.match(ltcPeer.subver, /bcoin/);
});

test('bcoin B syncs segwit-era blocks from bcoin A', { timeout: 60_000 }, async (t) => {
  const nodes: BcoinNode[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.stop())));
  const a = await startBcoin({ name: 'bcoin A' });
  nodes.push(a);
  const hashes = await a.mine(5);
  assert.equal(a.height, 5);
  const b = await startBcoin({ name: 'bcoin B', listen: false });
  nodes.push(b);
  b.connectTo('127.0.0.1', a.port);
  await b.waitForHeight(5, 30_000);
  assert.equal(b.tipHash(), hashes[4]);
  assert.equal((await a.waitForPeers(1))[0]?.outbound, false);
});
