/**
 * The SOCKS5 front for our node's outbound connections, against real SOCKS5 clients and servers:
 * litecoind 0.21's own -proxy (Bitcoin Core 0.21's SOCKS5 client, with -proxyrandomize's
 * username/password), curl 7.88's --socks5 and --socks5-hostname, and Debian's microsocks as the
 * upstream SOCKS5 server for chaining. Refusals are checked with raw bytes as RFC 1928 writes them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startLitecoind, litecoindSkipReason, type Litecoind } from '../support/litecoind.js';
import { freePort } from '../support/ports.js';
import { startTestProxy, connectRaw, collectUntilClosed, type TestProxy } from '../support/proxy-harness.js';
import { waitFor } from '../support/wait.js';
import { startTestOutbound, type TestOutbound } from '../client/outbound.js';

const skip = litecoindSkipReason();
const hasCurl = spawnSync('sh', ['-c', 'command -v curl']).status === 0;
const hasMicrosocks = spawnSync('sh', ['-c', 'command -v microsocks']).status === 0;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'bhp-socks-test-'));

let b: Litecoind;
let proxy: TestProxy;
let out: TestOutbound;
/** a plain TCP server that counts connections (curl's destination) */
let target: net.Server;
let targetPort: number;
let targetConnections = 0;
let target6: net.Server | null = null;
let target6Port = 0;

before(async () => {
  if (skip) return;
  b = await startLitecoind({ name: 'socks-b' });
  await b.generate(25);
  proxy = await startTestProxy(await freePort()); // its inbound side is unused here: the outbound side shares its settings
  out = await startTestOutbound(proxy, 'socks: { negotiateTimeout: 1s, connectTimeout: 5s }', tmp);
  target = net.createServer((s) => {
    targetConnections++;
    s.on('error', () => {});
    s.on('data', () => {});
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  targetPort = (target.address() as net.AddressInfo).port;
  try {
    target6 = net.createServer((s) => {
      targetConnections++;
      s.on('error', () => {});
    });
    await new Promise<void>((r, j) => target6!.once('error', j).listen(0, '::1', r));
    target6Port = (target6.address() as net.AddressInfo).port;
  } catch {
    target6 = null; // no IPv6 loopback here
  }
});

after(async () => {
  await out?.close();
  await proxy?.close();
  await b?.stop();
  target?.close();
  target6?.close();
});

function curl(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn('curl', ['-sv', '--max-time', '5', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

/** Greet with no-auth, send `request`, return the method and reply code (null when closed before them). */
async function rawRequest(port: number, request: Buffer, greeting = Buffer.from([5, 1, 0])): Promise<{ method: number | null; reply: number | null }> {
  const s = await connectRaw(port);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  const closed = collectUntilClosed(s);
  s.write(greeting);
  await waitFor(() => s.bytesRead >= 2 || s.destroyed, 5000, 'the method answer');
  s.write(request);
  // a refusal closes the connection; a success leaves it open (it is a session now)
  await waitFor(() => s.bytesRead >= 12 || s.destroyed, 10_000, 'the reply or the close');
  void closed;
  s.destroy();
  const data = Buffer.concat(chunks);
  return { method: data.length >= 2 ? data[1]! : null, reply: data.length >= 4 ? data[3]! : null };
}

test('litecoind -proxy (Core 0.21 SOCKS5 client, username/password) syncs from another litecoind through the front', { skip, timeout: 120_000 }, async () => {
  const sessionsBefore = out.socks.counts.sessions;
  const userpassBefore = out.socks.counts.methods.userpass;
  // a name, not 127.0.0.1: bitcoind connects to loopback addresses directly, never through -proxy
  const a = await startLitecoind({ name: 'socks-a', extraArgs: [`-proxy=127.0.0.1:${out.port}`, `-connect=localhost:${b.p2pPort}`] });
  try {
    await a.waitForHeight(25, 60_000);
    assert.equal(await a.getBestBlockHash(), await b.getBestBlockHash());
    assert.ok(out.socks.counts.sessions > sessionsBefore, 'the connection went through the SOCKS front');
    assert.ok(out.socks.counts.methods.userpass > userpassBefore, 'bitcoind offered username/password (-proxyrandomize) and it was taken');
    const line = proxy.logs.find((l) => l.msg === 'outbound connection of our node' && l.dest === `localhost:${b.p2pPort}`);
    assert.ok(line, 'the destination arrived as a domain name (ATYP 3) and was resolved by the front');
    const outcome = await waitFor(() => { const o = out.socks.sessions()[0]?.info.state.get('buyer.outcome'); return o !== 'running' && o; }, 30_000, 'the buyer to look at the remote');
    assert.equal(outcome, 'no_x', 'a plain node announces no x: feature: nothing to buy');
    const peers = await b.getPeerInfo();
    assert.ok(peers.some((p) => p.inbound), 'B sees A as an ordinary inbound peer');
    // the inbound proxy's hooks reach our node's outbound sessions too (ctx.peers, ctx.send)
    const outboundId = out.socks.sessions()[0]!.info.id;
    assert.ok(proxy.proxy.peers().some((p) => p.id === outboundId), 'ctx.peers() lists the outbound session');
    const pingsAtB = async () => (await b.getPeerInfo()).reduce((n, p) => n + ((p as { bytesrecv_per_msg?: Record<string, number> }).bytesrecv_per_msg?.ping ?? 0), 0);
    const before = await pingsAtB();
    assert.equal(proxy.proxy.send(outboundId, { command: 'ping', payload: Buffer.alloc(8, 0x42) }), true, 'ctx.send to an outbound session');
    await waitFor(async () => (await pingsAtB()) >= before + 32, 20_000, 'B to receive the ping a hook sent');
  } finally {
    await a.stop();
  }
});

test('curl --socks5 (IPv4 and IPv6 literals) and --socks5-hostname (a name) get CONNECT granted', { skip: skip || (!hasCurl && !process.env.CI && 'curl is not installed'), timeout: 60_000 }, async () => {
  const before = targetConnections;
  for (const args of [
    ['--socks5', `127.0.0.1:${out.port}`, `http://127.0.0.1:${targetPort}/`],
    ['--socks5-hostname', `127.0.0.1:${out.port}`, `http://localhost:${targetPort}/`],
    ['--socks5', `127.0.0.1:${out.port}`, '--proxy-user', 'any:thing', `http://127.0.0.1:${targetPort}/`],
    ...(target6 ? [['--socks5', `127.0.0.1:${out.port}`, `http://[::1]:${target6Port}/`]] : []),
  ]) {
    const r = await curl(args);
    assert.match(r.stderr, /SOCKS5 request granted/, `curl ${args.join(' ')}:\n${r.stderr}`);
  }
  // HTTP is no Bitcoin P2P: the session closes on the bad magic, which is fine for this test
  await waitFor(() => targetConnections >= before + (target6 ? 4 : 3), 10_000, 'the destinations to see the connections');
});

test('refusals with their reply codes; the front keeps serving', { skip, timeout: 60_000 }, async () => {
  const ip = (port: number) => Buffer.from([127, 0, 0, 1, port >> 8, port & 0xff]);
  // BIND and UDP ASSOCIATE: command not supported (7)
  assert.equal((await rawRequest(out.port, Buffer.concat([Buffer.from([5, 2, 0, 1]), ip(targetPort)]))).reply, 7);
  assert.equal((await rawRequest(out.port, Buffer.concat([Buffer.from([5, 3, 0, 1]), ip(targetPort)]))).reply, 7);
  // an address type that does not exist: 8
  assert.equal((await rawRequest(out.port, Buffer.from([5, 1, 0, 9, 1, 2, 3, 4, 0, 80]))).reply, 8);
  // onion and I2P without an upstream: address type not supported (8)
  const name = (host: string, port = 8333) => Buffer.concat([Buffer.from([5, 1, 0, 3, host.length]), Buffer.from(host), Buffer.from([port >> 8, port & 0xff])]);
  assert.equal((await rawRequest(out.port, name('expyuzz4wqqyqhjn.onion'))).reply, 8);
  assert.equal((await rawRequest(out.port, name('ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p'))).reply, 8);
  // nothing listens there: connection refused (5)
  assert.equal((await rawRequest(out.port, Buffer.concat([Buffer.from([5, 1, 0, 1]), ip(await freePort())]))).reply, 5);
  // no acceptable method (GSSAPI only): 0xff, then closed
  const s = await connectRaw(out.port);
  const closed = collectUntilClosed(s);
  s.write(Buffer.from([5, 1, 1]));
  assert.deepEqual([...(await closed).data], [5, 0xff]);
  // SOCKS4 and silence: closed without a reply
  const s4 = await connectRaw(out.port);
  const c4 = collectUntilClosed(s4);
  s4.write(Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]));
  assert.equal((await c4).data.length, 0);
  const quiet = await connectRaw(out.port);
  assert.equal((await collectUntilClosed(quiet)).data.length, 0, 'closed after negotiateTimeout');
  if (hasCurl) {
    const r = await curl(['--socks5-hostname', `127.0.0.1:${out.port}`, 'http://expyuzz4wqqyqhjn.onion/']);
    assert.match(r.stderr, /\(8\)|address type not supported/i, r.stderr);
  }
  // and a good request still works
  assert.equal((await rawRequest(out.port, Buffer.concat([Buffer.from([5, 1, 0, 1]), ip(targetPort)]))).reply, 0);
  assert.ok((out.socks.counts.refused.get('address_type_not_supported') ?? 0) >= 3);
  // published to Prometheus at scrape time, by reply name
  assert.ok((await proxy.metricValue('bhp_socks_refused_total', { reply: 'address_type_not_supported' })) >= 3, 'refusals by reply (8)');
  assert.ok((await proxy.metricValue('bhp_socks_refused_total', { reply: 'command_not_supported' })) >= 2, 'refusals by reply (7)');
  assert.ok((await proxy.metricValue('bhp_socks_refused_total', { reply: 'connection_refused' })) >= 1, 'refusals by reply (5)');
  assert.ok((await proxy.metricValue('bhp_socks_protocol_errors_total')) >= 2, 'GSSAPI only, SOCKS4, silence');
  assert.equal(await proxy.metricValue('bhp_socks_connections_total'), out.socks.counts.accepted);
});

test('the longest negotiation RFC 1928 and 1929 allow, sent in one write (1,032 bytes), is read whole', { skip, timeout: 30_000 }, async () => {
  // it was cut at 1,024 bytes: the request's end was lost and the client timed out with no reply
  const greeting = Buffer.from([5, 255, ...Array.from({ length: 255 }, (_, i) => (i === 0 ? 2 : i === 1 ? 0 : 0x80 + (i % 0x7f)))]);
  const auth = Buffer.concat([Buffer.from([1, 255]), Buffer.alloc(255, 'u'), Buffer.from([255]), Buffer.alloc(255, 'p')]);
  const host = `${'a'.repeat(249)}.onion`; // refused at once without an upstream (8): no lookup
  const request = Buffer.concat([Buffer.from([5, 1, 0, 3, host.length]), Buffer.from(host), Buffer.from([0x20, 0x8d])]);
  const all = Buffer.concat([greeting, auth, request]);
  assert.equal(all.length, 1032);
  const sock = await connectRaw(out.port);
  const closed = collectUntilClosed(sock);
  sock.write(all);
  const data = (await closed).data;
  assert.deepEqual([...data.subarray(0, 2)], [5, 2], 'username/password chosen');
  assert.deepEqual([...data.subarray(2, 4)], [1, 0], 'authenticated');
  assert.equal(data[5], 8, `the request was read whole and refused with 8 (got ${data.toString('hex')})`);
});

test('upstream SOCKS5 (microsocks): connections are chained through it, onion names go to it instead of being refused', { skip: skip || (!hasMicrosocks && !process.env.CI && 'microsocks is not installed (apt-get install microsocks; .ci/run does)'), timeout: 120_000 }, async () => {
  const upPort = await freePort();
  const ms: ChildProcess = spawn('microsocks', ['-i', '127.0.0.1', '-p', String(upPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let msOut = '';
  ms.stdout!.on('data', (d: Buffer) => (msOut += d.toString()));
  ms.stderr!.on('data', (d: Buffer) => (msOut += d.toString()));
  const chained = await startTestOutbound(proxy, `upstream: "127.0.0.1:${upPort}"\nsocks: { connectTimeout: 5s }`, tmp);
  try {
    await waitFor(async () => { const s = await connectRaw(upPort); s.destroy(); return true; }, 10_000, 'microsocks to listen');
    const a = await startLitecoind({ name: 'socks-chain', extraArgs: [`-proxy=127.0.0.1:${chained.port}`, `-connect=localhost:${b.p2pPort}`] });
    try {
      await a.waitForHeight(25, 60_000);
    } finally {
      await a.stop();
    }
    assert.ok(chained.socks.counts.sessions >= 1);
    // microsocks cannot reach an onion: the refusal is its own (not our 8), passed on
    const r = await rawRequest(chained.port, Buffer.concat([Buffer.from([5, 1, 0, 3, 22]), Buffer.from('expyuzz4wqqyqhjn.onion'), Buffer.from([0x20, 0x8d])]));
    assert.notEqual(r.reply, 0);
    assert.notEqual(r.reply, 8, 'chained to the upstream, not refused here');
    assert.ok(proxy.logs.some((l) => l.msg === 'SOCKS request refused' && String(l.why).includes('upstream SOCKS5')), 'the refusal came from the upstream');
  } finally {
    await chained.close();
    ms.kill('SIGTERM');
  }
});
