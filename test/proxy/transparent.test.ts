/**
 * The proxy with an empty hook chain is invisible: real nodes sync through it and every byte
 * arrives unchanged, except the one version message it mends (addrRecv).
 * Real implementations: litecoind 0.21 from Debian (Bitcoin Core 0.21's P2P code, regtest
 * magic fabfb5da) on both sides; bcoin 1.0.2 from npm (a Bitcoin full node) on both sides.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFrames, decodePayload, NETWORKS, type VersionMessage } from '../../src/codec/index.js';
import { startLitecoind, litecoindSkipReason, type Litecoind } from '../support/litecoind.js';
import { startBcoin, bcoinAvailable, type BcoinNode } from '../support/bcoin-node.js';
import { TcpRecorder } from '../support/tcp-recorder.js';
import { NODE_P2P_V2 } from '../../src/proxy/handshake.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { waitFor } from '../support/wait.js';
import { cleanupStack } from '../support/cleanup.js';

const regtest = { network: NETWORKS.regtest, checksum: 'always' as const };

test('litecoind syncs blocks and a transaction through the proxy, byte for byte', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const a: Litecoind = await startLitecoind({ name: 'backend' });
  cleanup.push(() => a.stop());
  // B → rec1 → proxy → rec2 → A: the recorders see both sides of the proxy, untouched.
  const rec2 = await TcpRecorder.start('127.0.0.1', a.p2pPort);
  cleanup.push(() => rec2.close());
  const proxy: TestProxy = await startTestProxy(rec2.port);
  cleanup.push(() => proxy.close());
  const rec1 = await TcpRecorder.start('127.0.0.1', proxy.port);
  cleanup.push(() => rec1.close());

  await a.generate(110); // coinbase maturity, so A's wallet can pay
  const b = await startLitecoind({ name: 'peer', extraArgs: [`-connect=${rec1.address}`] });
  cleanup.push(() => b.stop());
  await b.waitForHeight(110, 60_000);
  assert.equal(await b.getBestBlockHash(), await a.getBestBlockHash(), 'B has A\'s chain');
  await a.generate(5); // announced and relayed while connected
  await b.waitForHeight(115, 30_000);
  assert.equal(await b.getBestBlockHash(), await a.getBestBlockHash());

  const txid = (await a.rpc('sendtoaddress', [await b.getNewAddress(), 1])) as string;
  await waitFor(async () => ((await b.rpc('getrawmempool', [])) as string[]).includes(txid), 30_000, 'the transaction to reach B through the proxy');

  // The session's handshake fields were recorded.
  const [session] = proxy.proxy.sessions();
  assert.ok(session, 'one session open');
  assert.equal(session.info.handshakeComplete, true);
  assert.match(session.info.userAgent ?? '', /LitecoinCore:0\.21/);
  assert.equal(session.info.version, 70016);

  await b.stop();
  await waitFor(() => rec1.connections[0]?.closed && rec2.connections[0]?.closed, 5_000, 'both recorded connections to close');

  // Peer → node: every byte unchanged and in order.
  const sentByPeer = rec1.bytes(0, 'clientToTarget');
  const reachedNode = rec2.bytes(0, 'clientToTarget');
  assert.ok(sentByPeer.length > 1000, `peer sent ${sentByPeer.length} bytes`);
  assert.ok(sentByPeer.equals(reachedNode), `peer→node streams differ (${sentByPeer.length} vs ${reachedNode.length} bytes)`);

  // Node → peer: identical frames except the first version, whose addrRecv was mended.
  const fromNode = decodeFrames(rec2.bytes(0, 'targetToClient'), regtest);
  const toPeer = decodeFrames(rec1.bytes(0, 'targetToClient'), regtest);
  assert.equal(toPeer.length, fromNode.length, 'same number of frames');
  assert.ok(fromNode.some((f) => f.command === 'block'), 'blocks were relayed');
  assert.ok(fromNode.some((f) => f.command === 'tx'), 'the transaction was relayed');
  for (let i = 1; i < fromNode.length; i++) assert.ok(fromNode[i]!.raw.equals(toPeer[i]!.raw), `frame ${i} (${fromNode[i]!.command}) changed`);
  assert.equal(fromNode[0]!.command, 'version');
  const original = decodePayload<VersionMessage>('version', fromNode[0]!.payload);
  const mended = decodePayload<VersionMessage>('version', toPeer[0]!.payload);
  // v2: terminate (default): the proxy offers v2 itself, so it sets NODE_P2P_V2 too
  assert.deepEqual({ ...mended, addrRecv: null }, { ...original, services: original.services | NODE_P2P_V2, addrRecv: null }, 'only addrRecv and NODE_P2P_V2 differ');
  assert.equal(mended.addrRecv.ip.toString('hex'), '00000000000000000000ffff7f000001', 'the peer\'s real address (127.0.0.1, IPv4-mapped)');
  assert.notEqual(mended.addrRecv.port, original.addrRecv.port, 'the peer\'s real port, not the proxy\'s backend port');
  assert.ok(toPeer[0]!.checksumValid(), 'rewritten version carries a fresh checksum');
});

test('bcoin syncs segwit blocks from bcoin through the proxy', { skip: bcoinAvailable() ? false : 'bcoin not installed', timeout: 120_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const a: BcoinNode = await startBcoin({ name: 'backend' });
  cleanup.push(() => a.stop());
  // bcoin activates segwit on regtest through BIP9 signalling: 3 windows of 144 blocks
  await a.mine(432);
  assert.ok(a.node.chain.state.hasWitness(), 'segwit active on the backend');
  const proxy = await startTestProxy(a.port);
  cleanup.push(() => proxy.close());
  const b = await startBcoin({ name: 'peer', listen: false });
  cleanup.push(() => b.stop());
  b.connectTo('127.0.0.1', proxy.port);
  await b.waitForHeight(432, 60_000);
  assert.equal(b.tipHash(), a.tipHash(), 'same chain tip');
  const block = await a.node.chain.getBlock(a.node.chain.tip.hash);
  assert.ok(block.txs[0].hasWitness(), 'the blocks carry witness data (segwit coinbase)');
  assert.ok((await proxy.metricValue('bhp_messages_total', { command: 'block', direction: 'outbound' })) > 0, 'blocks went through the proxy');
});
