/**
 * hooks/capture: the writer against the real bitcoind captures of test/fixtures/bitcoind-capture
 * (recorded with Bitcoin Core 31.99's -capturemessages; our output must be byte-identical), the
 * hook through the real chain runner (createHookHarness, the compiled module loaded by path),
 * and end to end: the real proxy in front of litecoind 0.21 (Bitcoin Core 0.21's P2P code) with
 * a second litecoind syncing blocks through it, the bytes on the wire recorded by a plain TCP
 * relay (test/support/tcp-recorder.ts) and compared with the capture files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrameDecoder, NETWORKS, readCaptureFile, type CaptureRecord } from '../../src/codec/index.js';
import { HookLoadError } from '../../src/hooks/index.js';
import { createHookHarness } from '../../src/hooks/testing.js';
import { CaptureStore, captureFolderName, type DropReason } from '../../hooks/lib/capture-store.js';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { TcpRecorder } from '../support/tcp-recorder.js';
import { waitFor } from '../support/wait.js';
import { hooksYaml } from './support.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MODULE = path.resolve(here, '../../hooks/capture.js');
const FIXTURES = path.resolve(here, '../../../test/fixtures/bitcoind-capture');

function tmpDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-capture-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const BIG = { maxFileBytes: 2 ** 40, keep: 0, maxTotalBytes: 2 ** 40, maxBufferBytes: 2 ** 40 };

/** Records of a file and its rotated predecessors, oldest first. */
function readRotated(dir: string, kind: 'recv' | 'sent'): CaptureRecord[] {
  const gens = readdirSync(dir)
    .map((n) => new RegExp(`^msgs_${kind}(?:\\.(\\d+))?\\.dat$`).exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1] ?? 0))
    .sort((a, b) => b - a);
  return gens.flatMap((g) => readCaptureFile(readFileSync(path.join(dir, g === 0 ? `msgs_${kind}.dat` : `msgs_${kind}.${g}.dat`))));
}

test("the writer reproduces bitcoind's capture files byte for byte", async (t) => {
  const out = tmpDir(t);
  const store = new CaptureStore(out, BIG);
  const folders = readdirSync(FIXTURES).filter((n) => statSync(path.join(FIXTURES, n)).isDirectory());
  assert.ok(folders.length >= 20, 'the fixture folders are there');
  let files = 0;
  for (const folder of folders) {
    for (const kind of ['recv', 'sent'] as const) {
      const file = path.join(FIXTURES, folder, `msgs_${kind}.dat`);
      if (!existsSync(file)) continue;
      for (const r of readCaptureFile(readFileSync(file))) assert.ok(store.add(folder, kind, r));
      files++;
    }
  }
  await store.close();
  for (const folder of folders) {
    for (const kind of ['recv', 'sent'] as const) {
      const file = path.join(FIXTURES, folder, `msgs_${kind}.dat`);
      if (!existsSync(file)) continue;
      assert.ok(readFileSync(path.join(out, folder, `msgs_${kind}.dat`)).equals(readFileSync(file)), `${folder}/msgs_${kind}.dat`);
    }
  }
  assert.ok(files >= 40);
});

test("folder names as bitcoind's CaptureMessageToFile makes them", () => {
  assert.equal(captureFolderName('203.0.113.5', 8333), '203.0.113.5_8333');
  assert.equal(captureFolderName('::ffff:203.0.113.5', 18444), '203.0.113.5_18444');
  assert.equal(captureFolderName('2001:db8::1', 8333), '[2001_db8__1]_8333');
});

test('rotation keeps each file under maxFileBytes and `keep` old files; the newest records survive in order', async (t) => {
  const dir = tmpDir(t);
  const rotations: number[] = [];
  const store = new CaptureStore(dir, { maxFileBytes: 1000, keep: 2, maxTotalBytes: 1e9, maxBufferBytes: 1e9 }, { rotated: () => rotations.push(1) });
  const payload = (i: number) => Buffer.alloc(8 + (i % 5), i); // records of 32 to 36 bytes
  for (let i = 0; i < 200; i++) store.add('p', 'recv', { timeMicros: BigInt(i), command: 'ping', payload: payload(i) });
  await store.close();
  const names = readdirSync(path.join(dir, 'p')).sort();
  assert.deepEqual(names, ['msgs_recv.1.dat', 'msgs_recv.2.dat', 'msgs_recv.dat']);
  for (const n of names) assert.ok(statSync(path.join(dir, 'p', n)).size <= 1000, n);
  const recs = readRotated(path.join(dir, 'p'), 'recv');
  assert.ok(recs.length > 60 && recs.length < 200, `${recs.length} records kept`);
  const times = recs.map((r) => Number(r.timeMicros));
  assert.deepEqual(times, Array.from({ length: recs.length }, (_, i) => 200 - recs.length + i), 'contiguous up to the last record');
  for (const r of recs) assert.ok(r.payload.equals(payload(Number(r.timeMicros))));
  assert.ok(rotations.length >= 6);
  assert.ok(store.diskBytes <= 3000, `disk bytes tracked: ${store.diskBytes}`);
});

test('bounded buffer and total cap: records are dropped and counted, add() never waits', async (t) => {
  const dir = tmpDir(t);
  const drops: Record<string, number> = {};
  const events = { dropped: (r: DropReason, n: number) => void (drops[r] = (drops[r] ?? 0) + n) };
  const rec = (i: number) => ({ timeMicros: BigInt(i), command: 'ping', payload: Buffer.alloc(8, i) }); // 32 bytes
  const store = new CaptureStore(dir, { maxFileBytes: 4096, keep: 1, maxTotalBytes: 200, maxBufferBytes: 100 }, events);
  // nothing is written before the first await: the buffer (100 bytes) holds 3 records
  const accepted = Array.from({ length: 10 }, (_, i) => store.add('p', 'sent', rec(i)));
  assert.deepEqual(accepted, [true, true, true, false, false, false, false, false, false, false]);
  assert.equal(drops.buffer_full, 7);
  await store.flush();
  for (let i = 10; i < 20; i++) {
    store.add('p', 'sent', rec(i));
    await store.flush();
  }
  assert.equal(drops.total_cap, 7, '96 bytes on disk + 3 more records reach the 200-byte cap');
  assert.ok(statSync(path.join(dir, 'p', 'msgs_sent.dat')).size <= 200);
  store.add('p', 'sent', { timeMicros: 0n, command: 'block', payload: Buffer.alloc(5000) });
  assert.equal(drops.too_large, 1);
  await store.close();
  assert.equal(store.add('p', 'sent', rec(1)), false);
  assert.equal(drops.closed, 1);
});

test('total cap: files of a peer that reconnects from the same address and port are counted once', async (t) => {
  // Each (re)open of a peer's files added their sizes to the total again: a peer reconnecting
  // from the same address and port (our node's outbound peers on 8333, a peer with a fixed source
  // port) inflated the count by the whole file every time, until every record was dropped as
  // total_cap with the disk far below maxTotalBytes.
  const dir = tmpDir(t);
  const drops: Record<string, number> = {};
  const store = new CaptureStore(dir, { maxFileBytes: 4096, keep: 1, maxTotalBytes: 2048, maxBufferBytes: 1024 }, { dropped: (r, n) => void (drops[r] = (drops[r] ?? 0) + n) });
  for (let i = 0; i < 20; i++) {
    assert.ok(store.add('203.0.113.5_8333', 'recv', { timeMicros: BigInt(i), command: 'ping', payload: Buffer.alloc(8, i) }), `session ${i}: captured`);
    store.release('203.0.113.5_8333'); // the peer disconnects; its files are closed once written
    await store.flush();
  }
  assert.deepEqual(drops, {});
  assert.equal(readCaptureFile(readFileSync(path.join(dir, '203.0.113.5_8333', 'msgs_recv.dat'))).length, 20);
  assert.equal(store.diskBytes, 20 * 32, 'the bytes on disk, once');
  await store.close();
});

test('the hook: chosen peers (addresses, subnets) and commands, both directions, bitcoind file names', async (t) => {
  const dir = tmpDir(t);
  const h = await createHookHarness([{ module: MODULE, options: { dir, peers: ['198.51.100.0/24', '2001:db8::7'], commands: ['ping', 'pong', 'inv'] } }]);
  assert.equal(h.chain.hooksFor('inbound', 'tx').length, 0, 'unlisted commands stay on the fast path');
  const a = h.peer({ address: '198.51.100.9', port: 18444 });
  const b = h.peer({ address: '2001:db8::7', port: 8333 });
  const other = h.peer({ address: '192.0.2.1', port: 8333 });
  for (const p of [a, b, other]) {
    await h.deliver(p, 'inbound', 'ping', { nonce: 1n });
    await h.deliver(p, 'inbound', 'tx', Buffer.from('00'));
    await h.deliver(p, 'outbound', 'pong', { nonce: 1n });
    await h.deliver(p, 'outbound', 'ping', { nonce: 2n });
  }
  await h.close();
  assert.deepEqual(readdirSync(dir).sort(), ['198.51.100.9_18444', '[2001_db8__7]_8333']);
  const recv = readCaptureFile(readFileSync(path.join(dir, '198.51.100.9_18444', 'msgs_recv.dat')));
  const sent = readCaptureFile(readFileSync(path.join(dir, '198.51.100.9_18444', 'msgs_sent.dat')));
  assert.deepEqual(recv.map((r) => [r.command, r.payload.toString('hex')]), [['ping', '0100000000000000']]);
  assert.deepEqual(sent.map((r) => [r.command, r.payload.toString('hex')]), [['pong', '0100000000000000'], ['ping', '0200000000000000']]);
  const now = BigInt(Date.now()) * 1000n;
  assert.ok(sent.every((r) => r.timeMicros <= now && r.timeMicros > now - 60_000_000n), 'microseconds since the epoch');
  assert.ok(sent[0]!.timeMicros <= sent[1]!.timeMicros);
});

test('the hook: options are validated; one direction only', async (t) => {
  const dir = tmpDir(t);
  for (const options of [{}, { dir, peers: ['10.0.0.300'] }, { dir, maxFileBytes: '1 PB' }, { dir, maxFileBytes: '2048TiB' }, { dir, maxFileBytes: '512k' }, { dir, maxFileBytes: 10 }, { dir, commands: [] }, { dir, nope: 1 }]) {
    await assert.rejects(createHookHarness([{ module: MODULE, options }]), HookLoadError, JSON.stringify(options));
  }
  const file = path.join(dir, 'not-a-dir');
  writeFileSync(file, '');
  // one line naming the option and what is wrong with it, not node's bare "EEXIST: file already exists, mkdir"
  for (const bad of [file, path.join(file, 'sub')]) {
    await assert.rejects(createHookHarness([{ module: MODULE, options: { dir: bad } }]), (err: Error) => err instanceof HookLoadError && err.message.includes(`options.dir: ${bad} is not a writable folder (`), bad);
  }
  const h = await createHookHarness([{ module: MODULE, options: { dir, directions: ['outbound'], maxFileBytes: '64KiB' } }]);
  assert.equal(h.chain.hooksFor('inbound', 'ping').length, 0);
  assert.equal(h.chain.hooksFor('outbound', 'ping').length, 1);
  await h.close();
});

/** Frames (command, payload hex) in a byte stream. */
function framesOf(chunks: Buffer[]): [string, string][] {
  const out: [string, string][] = [];
  const d = new FrameDecoder({ network: NETWORKS.regtest, checksum: 'always' }, { onFrame: (f) => void out.push([f.command, f.payload.toString('hex')]), onError: (e) => assert.fail(e) });
  for (const c of chunks) d.push(c);
  return out;
}

test('through the proxy in front of litecoind, a second litecoind syncing through it: files match the frames that crossed, rotation bounds them', { skip: litecoindSkipReason(), timeout: 90_000 }, async (t) => {
  const dir = tmpDir(t);
  const a = await startLitecoind({ name: 'capture-a' });
  t.after(() => a.stop());
  await a.generate(20);
  const b = await startLitecoind({ name: 'capture-b', disableWallet: true });
  t.after(() => b.stop());
  const maxFileBytes = 4096;
  const proxy = await startTestProxy(a.p2pPort, hooksYaml([{ module: MODULE, options: { dir, maxFileBytes, keep: 100 } }]), { metrics: true });
  t.after(() => proxy.close());
  const relay = await TcpRecorder.start('127.0.0.1', proxy.port);
  t.after(() => relay.close());
  const t0 = BigInt(Date.now()) * 1000n;
  await b.addNode(`127.0.0.1:${relay.port}`, 'onetry');
  await b.waitForHeight(20, 30_000);
  const session = await waitFor(async () => proxy.proxy.sessions()[0], 5000, 'the session');
  const folder = `127.0.0.1_${session.info.port}`;
  await b.disconnectNode(`127.0.0.1:${relay.port}`);
  await waitFor(async () => proxy.proxy.sessions().length === 0 || null, 10_000, 'the session to end');
  await proxy.close(); // closes the chain: the hook writes what is queued
  const t1 = BigInt(Date.now()) * 1000n;

  assert.deepEqual(readdirSync(dir), [folder]);
  const conn = relay.connections[0]!;
  const recv = readRotated(path.join(dir, folder), 'recv');
  const sent = readRotated(path.join(dir, folder), 'sent');
  assert.deepEqual(
    recv.map((r) => [r.command, r.payload.toString('hex')]),
    framesOf(conn.clientToTarget),
    'msgs_recv: every frame litecoind B sent, in order, payloads exact',
  );
  assert.deepEqual(
    sent.map((r) => [r.command, r.payload.toString('hex')]),
    framesOf(conn.targetToClient),
    'msgs_sent: every frame B received through the proxy',
  );
  assert.equal(sent.filter((r) => r.command === 'block').length, 20, 'the 20 blocks B synced');
  assert.ok(recv.length > 5 && recv[0]!.command === 'version');
  for (const recs of [recv, sent]) {
    for (let i = 1; i < recs.length; i++) assert.ok(recs[i]!.timeMicros >= recs[i - 1]!.timeMicros, 'times never go back');
    assert.ok(recs[0]!.timeMicros >= t0 - 1000n && recs.at(-1)!.timeMicros <= t1);
  }
  const files = readdirSync(path.join(dir, folder));
  assert.ok(files.filter((n) => n.startsWith('msgs_sent')).length >= 3, `rotated: ${files.join(' ')}`);
  for (const n of files) assert.ok(statSync(path.join(dir, folder, n)).size <= maxFileBytes, `${n} within maxFileBytes`);
  assert.equal(await proxy.metricValue('bhp_hook_capture_records_total', { direction: 'outbound' }), sent.length);
  assert.equal(await proxy.metricValue('bhp_hook_capture_records_total', { direction: 'inbound' }), recv.length);
  assert.equal(await proxy.metricValue('bhp_hook_capture_dropped_total'), 0);
  assert.ok((await proxy.metricValue('bhp_hook_capture_rotations_total')) >= 2);
});
