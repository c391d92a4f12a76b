/**
 * Bad v2 input at the terminating proxy: each case closes that peer with its reason (logged and
 * counted in bhp_v2_failures_total), and the peers around it, one v1 and one v2, keep working.
 * Real implementation: litecoind 0.21 from Debian behind the proxy. The misbehaving initiator
 * is written here from BIP324 with the proxy's ciphers (checked against the BIP's vectors in
 * v2-vectors.test.ts), so that it can send what a correct one never would.
 */
import assert from 'node:assert/strict';
import type * as net from 'node:net';
import { test } from 'node:test';
import { NETWORKS, buildFrame } from '../../src/codec/index.js';
import { FSChaCha20, PacketCipher, deriveKeys, newEphemeralKey, sharedSecret } from '../../src/proxy/transport/v2/cipher.js';
import { contentsOf } from '../../src/proxy/transport/v2/connection.js';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { collectUntilClosed, connectRaw, startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { filePrng, randomBytes, seedNote } from '../support/seed.js';
import { startV2Bridge } from '../support/v2-bridge.js';
import { waitFor } from '../support/wait.js';
import { cleanupStack } from '../support/cleanup.js';

const skip = litecoindSkipReason();
const regtest = NETWORKS.regtest;
const rand = filePrng(import.meta.url);
const EMPTY = Buffer.alloc(0);

/** Our key and garbage out, the proxy's key in: the keys of a session we can then abuse. */
async function openV2(port: number, garbage: Buffer) {
  const socket = await connectRaw(port);
  socket.on('error', () => {});
  const closed = collectUntilClosed(socket);
  const key = newEphemeralKey();
  socket.write(Buffer.concat([key.ellswift, garbage]));
  const theirs = await new Promise<Buffer>((resolve, reject) => {
    let got = EMPTY;
    const onData = (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 64) {
        socket.off('data', onData);
        resolve(got.subarray(0, 64));
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed before the key')));
  });
  const k = deriveKeys(sharedSecret(key, theirs, true), regtest.magic);
  return { socket, closed, k };
}

function failures(proxy: TestProxy, reason: string): Promise<number> {
  return proxy.metricValue('bhp_v2_failures_total', { reason });
}

async function closedWith(proxy: TestProxy, closed: Promise<unknown>, reason: string, before: number): Promise<void> {
  await closed;
  await waitFor(async () => (await failures(proxy, reason)) === before + 1, 10_000, `bhp_v2_failures_total{reason="${reason}"} to count it`);
  assert.ok(
    proxy.logs.some((l) => l.reason === reason && /v2 transport failure/.test(l.msg)),
    `a log line gives the reason ${reason}`,
  );
}

test(`bad v2 openings and packets close that peer with its reason; others unaffected (${seedNote(import.meta.url)})`, { skip, timeout: 120_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'v2-bad', disableWallet: true });
  cleanup.push(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, 'v2: terminate\nlimits: { handshakeTimeout: 3s }', { metrics: true });
  cleanup.push(() => proxy.close());
  if (process.env.BHP_V2_DEBUG) cleanup.push(() => console.log(proxy.logs.map((l) => JSON.stringify(l)).join('\n')));
  const bridge = await startV2Bridge(proxy.port, regtest);
  cleanup.push(() => bridge.close());

  // the bystanders: one v1 peer, one v2 peer
  const v1 = await P2PClient.connect(proxy.port);
  cleanup.push(() => v1.close());
  await v1.handshake(20_000);
  const v2 = await P2PClient.connect(bridge.port);
  cleanup.push(() => v2.close());
  await v2.handshake(20_000);
  const bystandersOk = async () => {
    await v1.ping(10_000);
    await v2.ping(10_000);
  };

  await t.test('garbage too long: 4096 bytes and no terminator', async () => {
    const before = await failures(proxy, 'garbage_too_long');
    const { socket, closed } = await openV2(proxy.port, randomBytes(rand, 4096 + 16));
    await closedWith(proxy, closed, 'garbage_too_long', before);
    assert.ok(socket.destroyed || socket.readableEnded);
    await bystandersOk();
  });

  await t.test('a bad garbage terminator: the proxy keeps looking, then the opening times out', async () => {
    const before = await failures(proxy, 'handshake_timeout');
    const garbage = randomBytes(rand, 40);
    const { socket, closed, k } = await openV2(proxy.port, garbage);
    const send = new PacketCipher(k.initiatorL, k.initiatorP);
    const wrong = Buffer.from(k.initiatorTerminator);
    wrong[0]! ^= 0x01;
    socket.write(Buffer.concat([wrong, ...send.encrypt([], garbage)]));
    await closedWith(proxy, closed, 'handshake_timeout', before);
    await bystandersOk();
  });

  await t.test('a flipped ciphertext bit: authentication fails', async () => {
    const before = await failures(proxy, 'decrypt_failed');
    const garbage = randomBytes(rand, 10);
    const { socket, closed, k } = await openV2(proxy.port, garbage);
    const send = new PacketCipher(k.initiatorL, k.initiatorP);
    const version = send.encrypt([], garbage);
    const ping = Buffer.concat(send.encrypt([Buffer.of(18), randomBytes(rand, 8)], EMPTY)); // short id 18: ping
    ping[3 + 1 + Math.floor(rand() * 8)]! ^= 1 << Math.floor(rand() * 8); // a bit of the ciphertext (type or payload)
    socket.write(Buffer.concat([k.initiatorTerminator, ...version, ping]));
    await closedWith(proxy, closed, 'decrypt_failed', before);
    await bystandersOk();
  });

  await t.test('a wrong length: contents above the maximum', async () => {
    const before = await failures(proxy, 'packet_too_large');
    const { socket, closed, k } = await openV2(proxy.port, EMPTY);
    const send = new PacketCipher(k.initiatorL, k.initiatorP);
    const lengths = new FSChaCha20(k.initiatorL); // the length stream, to forge the second packet's
    const version = send.encrypt([], EMPTY);
    lengths.crypt(Buffer.alloc(3));
    const big = Buffer.alloc(3);
    big.writeUIntLE(4_000_014, 0, 3); // 1 + 12 + 4,000,000 is the most a packet may hold
    socket.write(Buffer.concat([k.initiatorTerminator, ...version, lengths.crypt(big)]));
    await closedWith(proxy, closed, 'packet_too_large', before);
    await bystandersOk();
  });

  await t.test('a v2 opening that stalls after the key', async () => {
    const before = await failures(proxy, 'handshake_timeout');
    const { closed } = await openV2(proxy.port, randomBytes(rand, 100));
    await closedWith(proxy, closed, 'handshake_timeout', before);
    await bystandersOk();
  });

  await t.test('the key of another network (magic differs, v1 version command)', async () => {
    const before = await failures(proxy, 'wrong_network');
    const socket: net.Socket = await connectRaw(proxy.port);
    socket.on('error', () => {});
    const closed = collectUntilClosed(socket);
    const header = Buffer.concat([NETWORKS.mainnet.magic, Buffer.from('version\0\0\0\0\0', 'latin1'), Buffer.alloc(8)]);
    socket.write(header);
    await closedWith(proxy, closed, 'wrong_network', before);
    await bystandersOk();
  });

  await t.test('decoy packets are ignored (the first one too, with the garbage as AAD) and an unknown short id is dropped; the peer stays', async () => {
    const before = await proxy.metricValue('bhp_protocol_errors_total', { code: 'V2_NO_V1_FORM' });
    const garbage = randomBytes(rand, 33);
    const { socket, closed, k } = await openV2(proxy.port, garbage);
    const send = new PacketCipher(k.initiatorL, k.initiatorP);
    const addr = { services: 0n, ip: Buffer.alloc(16), port: 0 };
    const version = buildFrame(regtest, 'version', { version: 70016, services: 0x409n, timestamp: 0n, addrRecv: addr, addrFrom: addr, nonce: 7n, userAgent: '/v2-decoys/', startHeight: 0, relay: true });
    socket.write(
      Buffer.concat([
        k.initiatorTerminator,
        ...send.encrypt([randomBytes(rand, 50)], garbage, true), // a decoy before the version packet
        ...send.encrypt([], EMPTY), // the version packet
        ...send.encrypt([randomBytes(rand, 10)], EMPTY, true), // a decoy
        ...send.encrypt([Buffer.of(200), randomBytes(rand, 5)], EMPTY), // short id 200: not in the table
        ...send.encrypt(contentsOf(version.raw), EMPTY), // the P2P version message, long form
      ]),
    );
    await waitFor(() => proxy.proxy.sessions().some((s) => s.info.userAgent === '/v2-decoys/'), 10_000, 'the version after the decoys to reach the proxy');
    await waitFor(async () => (await proxy.metricValue('bhp_protocol_errors_total', { code: 'V2_NO_V1_FORM' })) === before + 1, 10_000, 'the unknown short id to be counted');
    assert.equal(socket.destroyed, false, 'the peer stays');
    socket.destroy();
    await closed;
    await bystandersOk();
  });

  await t.test('2 MB of small decoys in one write: the packets that straddle two bulk reads still authenticate; the peer stays', async () => {
    const before = await failures(proxy, 'decrypt_failed');
    const garbage = randomBytes(rand, 20);
    const { socket, closed, k } = await openV2(proxy.port, garbage);
    const send = new PacketCipher(k.initiatorL, k.initiatorP);
    // 30-byte packets: nothing reaches bitcoind, so the read buffer is not lent, and most 64 KB
    // reads end inside a packet's length field or tag, which the proxy keeps for the next read
    const decoys: Buffer[] = [];
    for (let i = 0; i < 70_000; i++) decoys.push(...send.encrypt([randomBytes(rand, 10)], i === 0 ? garbage : EMPTY, true));
    const addr = { services: 0n, ip: Buffer.alloc(16), port: 0 };
    const version = buildFrame(regtest, 'version', { version: 70016, services: 0x409n, timestamp: 0n, addrRecv: addr, addrFrom: addr, nonce: 8n, userAgent: '/v2-bulk-decoys/', startHeight: 0, relay: true });
    socket.write(Buffer.concat([k.initiatorTerminator, ...decoys, ...send.encrypt([], EMPTY), ...send.encrypt(contentsOf(version.raw), EMPTY)]));
    await Promise.race([
      waitFor(() => proxy.proxy.sessions().some((s) => s.info.userAgent === '/v2-bulk-decoys/'), 20_000, 'the version after the decoys to reach the proxy'),
      closed.then(() => assert.fail('the proxy closed the peer')),
    ]);
    assert.equal(await failures(proxy, 'decrypt_failed'), before, 'no packet failed authentication');
    socket.destroy();
    await closed;
    await bystandersOk();
  });

  await waitFor(() => proxy.proxy.sessions().length === 2, 10_000, 'only the two bystanders to be left');
  assert.equal(await proxy.metricValue('bhp_v2_sessions_total', { role: 'responder' }), 5, 'v2 handshakes completed: the bystander, the flipped-bit, wrong-length and both decoy peers');
});
