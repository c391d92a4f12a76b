/**
 * Log amplification: frames a peer can send over and over must not turn into a log line each.
 * Log lines a peer can trigger are limited per peer and reason (limits.logLinesPerMinute), with
 * one "suppressed K similar lines" line, and everything is counted in metrics.
 *
 * Real implementations: the backend is a real regtest litecoind (Bitcoin Core 0.21 P2P code);
 * the proxy is the real one with its pino log going to a stream (test/support/proxy-harness.ts,
 * at level debug, stricter than the default info); the attackers are our raw P2P client
 * (test/support/p2p-client.ts). The limiter's window roll-over is tested on its own with a
 * real pino logger writing to a stream.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { NETWORKS, encodeFrame } from '../../src/codec/index.js';
import { LogLimiter } from '../../src/proxy/log-limiter.js';
import { connectPeer, pingRoundTrip, sessionOf } from '../hooks/support.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient, badChecksumFrame, loopbackAddress } from '../support/p2p-client.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { sleep, waitFor } from '../support/wait.js';

const skip = litecoindSkipReason();
const regtest = NETWORKS.regtest;
const N = 10_000;
/** log bytes per byte received must stay far below 1 */
const MAX_RATIO = 0.05;

let node: Litecoind;
let proxy: TestProxy;
before(async () => {
  if (skip) return;
  node = await startLitecoind({ name: 'log-amp', disableWallet: true });
  // a threshold nobody reaches here, so every frame arrives (the ban test below uses its own proxy)
  proxy = await startTestProxy(node.p2pPort, 'checksum: always\nbans: { threshold: 1000000000 }\nlimits: { maxPeersPerSubnet: 100 }');
});
after(async () => {
  await proxy?.close();
  await node?.stop();
});

let nextAddress = 0;
const metric = (name: string, labels: Record<string, string> = {}) => proxy.metricValue(name, labels);

/** Send `frame` n times in a few large writes, then a ping whose pong proves all were handled. */
async function sendMany(c: P2PClient, frame: Buffer, n: number): Promise<void> {
  for (let done = 0; done < n; done += 1000) c.sendRaw(Buffer.concat(Array.from({ length: Math.min(1000, n - done) }, () => frame)));
  await pingRoundTrip(c, BigInt(n), 30_000);
}

test('10,000 unknown x: frames from a peer without the feature: a handful of log lines, all counted, misbehaviour from the second on', { skip, timeout: 120_000 }, async (t) => {
  const { client } = await connectPeer(proxy.port, { localAddress: loopbackAddress(nextAddress++) });
  const session = sessionOf(proxy, client);
  const frame = Buffer.from(encodeFrame(regtest, 'x:nosuch', Buffer.alloc(0)).raw);
  const unknownBefore = await metric('bhp_x_commands_total', { outcome: 'unknown' });
  const logBefore = proxy.logBytes();
  const inBefore = session.info.bytesIn;
  await sendMany(client, frame, N);
  const received = session.info.bytesIn - inBefore;
  assert.ok(received >= N * frame.length, `the proxy received the frames (${received} bytes)`);

  assert.equal((await metric('bhp_x_commands_total', { outcome: 'unknown' })) - unknownBefore, N, 'every x: frame counted');
  assert.equal(session.info.misbehaviour, N - 1, 'one misbehaviour point for each x: frame after the first');
  assert.equal(await metric('bhp_misbehaviour_events_total'), N - 1);
  for (const reason of ['x_unknown', 'x_without_feature', 'misbehaviour']) {
    const written = await metric('bhp_log_lines_total', { reason, outcome: 'written' });
    const suppressed = await metric('bhp_log_lines_total', { reason, outcome: 'suppressed' });
    const expected = reason === 'x_unknown' ? N : reason === 'misbehaviour' ? N - 1 : 1;
    assert.equal(written + suppressed, expected, `${reason}: every line counted, written or suppressed`);
    assert.ok(written <= 10, `${reason}: at most 10 written (${written})`);
  }
  assert.equal(client.frames.filter((f) => f.command.startsWith('x:')).length, 0, 'no x: message to a peer without the feature');
  await client.close();
  await waitFor(() => proxy.logs.some((l) => l.logReason === 'x_unknown' && l.suppressed === N - 10), 5000, 'the "suppressed" summary line at close');
  const logged = proxy.logBytes() - logBefore;
  t.diagnostic(`log bytes / received bytes = ${logged} / ${received} = ${(logged / received).toFixed(4)}`);
  assert.ok(logged / received < MAX_RATIO, `log bytes / received bytes = ${logged} / ${received} = ${(logged / received).toFixed(4)}`);
});

test('10,000 malformed feature messages before verack: a handful of log lines', { skip, timeout: 120_000 }, async (t) => {
  const client = await P2PClient.connect(proxy.port, { localAddress: loopbackAddress(nextAddress++) });
  client.socket.on('error', () => {});
  client.send('version', client.versionMessage({ version: 70017 }));
  await client.waitFor('version');
  const session = sessionOf(proxy, client);
  // a feature id that says 5 bytes and carries 2
  const frame = Buffer.from(encodeFrame(regtest, 'feature', Buffer.from('056162', 'hex')).raw);
  const logBefore = proxy.logBytes();
  const inBefore = session.info.bytesIn;
  for (let done = 0; done < N; done += 1000) client.sendRaw(Buffer.concat(Array.from({ length: 1000 }, () => frame)));
  client.send('verack', {});
  await client.waitFor('verack', 30_000);
  await pingRoundTrip(client, 7n, 30_000);
  const received = session.info.bytesIn - inBefore;
  const written = await metric('bhp_log_lines_total', { reason: 'feature_malformed', outcome: 'written' });
  const suppressed = await metric('bhp_log_lines_total', { reason: 'feature_malformed', outcome: 'suppressed' });
  assert.equal(written + suppressed, N, 'every malformed feature counted');
  assert.ok(written <= 10, `at most 10 written (${written})`);
  assert.equal(session.info.features.size, 0, 'nothing recorded from them');
  await client.close();
  const logged = proxy.logBytes() - logBefore;
  t.diagnostic(`log bytes / received bytes = ${logged} / ${received} = ${(logged / received).toFixed(4)}`);
  assert.ok(logged / received < MAX_RATIO, `log bytes / received bytes = ${logged} / ${received} = ${(logged / received).toFixed(4)}`);
});

test('10,000 frames with a bad checksum (checksum: always): dropped, counted, a handful of log lines', { skip, timeout: 120_000 }, async (t) => {
  const { client } = await connectPeer(proxy.port, { localAddress: loopbackAddress(nextAddress++) });
  const session = sessionOf(proxy, client);
  const before = await metric('bhp_protocol_errors_total', { code: 'BAD_CHECKSUM' });
  const logBefore = proxy.logBytes();
  const inBefore = session.info.bytesIn;
  await sendMany(client, badChecksumFrame(regtest, 'ping', Buffer.alloc(8, 1)), N);
  const received = session.info.bytesIn - inBefore;
  assert.equal((await metric('bhp_protocol_errors_total', { code: 'BAD_CHECKSUM' })) - before, N);
  const written = await metric('bhp_log_lines_total', { reason: 'bad_checksum', outcome: 'written' });
  assert.ok(written <= 10, `at most 10 written (${written})`);
  await client.close();
  const logged = proxy.logBytes() - logBefore;
  t.diagnostic(`log bytes / received bytes = ${logged} / ${received} = ${(logged / received).toFixed(4)}`);
  assert.ok(logged / received < MAX_RATIO, `log bytes / received bytes = ${logged} / ${received} = ${(logged / received).toFixed(4)}`);
});

test('a peer that keeps sending x: messages without the feature is banned at the misbehaviour threshold', { skip, timeout: 60_000 }, async (t) => {
  const strict = await startTestProxy(node.p2pPort, 'bans: { threshold: 100 }');
  t.after(() => strict.close());
  const { client } = await connectPeer(strict.port);
  const frame = Buffer.from(encodeFrame(regtest, 'x:hello', Buffer.alloc(8)).raw);
  client.sendRaw(Buffer.concat(Array.from({ length: 150 }, () => frame)));
  assert.ok(await client.closedWithin(10_000), 'closed');
  assert.equal(await strict.metricValue('bhp_bans_added_total', { reason: 'misbehaviour' }), 1);
  assert.equal(await strict.metricValue('bhp_misbehaviour_events_total'), 100, 'banned at the 101st x: frame (the first is forgiven)');
});

test('LogLimiter: N lines per reason per window, then one summary line when the window rolls over', async () => {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    }),
  );
  const counted: string[] = [];
  const limiter = new LogLimiter(log, 3, { logLine: (reason, outcome) => counted.push(`${reason}/${outcome}`) }, 100);
  for (let i = 0; i < 50; i++) limiter.line('hook:slow', 'info', { i }, 'a line');
  limiter.line('other_reason', 'info', {}, 'another');
  limiter.line('quiet', 'debug', {}, 'below the level: not written, not counted');
  assert.deepEqual(lines.map((l) => l.i ?? l.msg), [0, 1, 2, 'another']);
  await sleep(150);
  limiter.line('hook:slow', 'info', { i: 50 }, 'a line');
  assert.deepEqual(lines.slice(4).map((l) => l.msg), ['suppressed 47 similar lines', 'a line']);
  assert.equal(lines[4]!.logReason, 'hook:slow');
  assert.equal(counted.filter((c) => c === 'hook/written').length, 4, 'hook names are not metric labels');
  assert.equal(counted.filter((c) => c === 'hook/suppressed').length, 47);
  assert.equal(counted.length, 52);
  limiter.flush();
  assert.equal(lines.length, 6, 'nothing left to summarise');
});
