/**
 * The hook runtime end to end: modules listed in the YAML `hooks:` list are loaded by absolute
 * path with dynamic import() (fixtures compiled to dist/test/hooks/fixtures/), run by the real
 * proxy (startProxy via test/support/proxy-harness.ts: src/hooks/loader.ts, src/hooks/chain.ts,
 * src/proxy/peer-session.ts), in front of a real regtest litecoind (Litecoin Core 0.21.2.1,
 * Bitcoin Core 0.21's P2P code). Peers are raw P2P clients on our codec (test/support/p2p-client.ts).
 * What litecoind received is read from its own accounting (getpeerinfo bytesrecv_per_msg).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeMessage, encodeFrame, NETWORKS, PayloadReader } from '../../src/codec/index.js';
import { HOOK_API_VERSION, HookLoadError, X_FEATURE_ID } from '../../src/hooks/index.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient, loopbackAddress } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { sleep, waitFor } from '../support/wait.js';
import { fixtureState } from './fixtures/state.js';
import { backendPeer, connectPeer, invocations, connectXPeer, fixture, hooksYaml, pingHex, pingRoundTrip, sessionOf } from './support.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(here, '../../src/cli.js');
const regtest = NETWORKS.regtest;
const skip = litecoindSkipReason();
let node: Litecoind;
const proxies: TestProxy[] = [];
const clients: P2PClient[] = [];

before(async () => {
  if (!skip) node = await startLitecoind({ name: 'hooks-runtime', disableWallet: true });
});
after(async () => {
  for (const c of clients) c.socket.destroy();
  for (const p of proxies) await p.close().catch(() => {});
  await node?.stop();
});

async function proxyWith(yaml: string, opts: { metrics?: boolean; admin?: boolean } = {}): Promise<TestProxy> {
  const p = await startTestProxy(node.p2pPort, yaml, opts);
  proxies.push(p);
  return p;
}
function track<T extends { client: P2PClient }>(r: T): T {
  clients.push(r.client);
  return r;
}
const other = (info: { bytesrecv_per_msg: Record<string, number> }) => info.bytesrecv_per_msg['*other*'] ?? 0;

test('a module built for another major API version refuses to load: startProxy rejects, CLI check exits 1', async () => {
  // Real implementations: src/hooks/loader.ts checkModule via startProxy, and the built CLI.
  const module = fixture('version-mismatch');
  const port = await freePort();
  await assert.rejects(startTestProxy(1, hooksYaml([{ module }]).replace('hooks:', `limits: { maxPeers: 5 }\nhooks:`)), (err: unknown) => {
    assert.ok(err instanceof HookLoadError, `HookLoadError, got ${String(err)}`);
    assert.match(err.message, /version-mismatch\.js/, 'names the module');
    assert.match(err.message, /from-the-future/, 'names the hook');
    assert.match(err.message, /2\.0/, "names the module's version");
    assert.ok(err.message.includes(HOOK_API_VERSION), "names the proxy's version");
    return true;
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-hooks-'));
  try {
    const file = path.join(dir, 'proxy.yaml');
    // by path relative to the config file, as an operator writes it
    writeFileSync(file, `network: regtest\nlisten: "127.0.0.1:${port}"\nbackend: "127.0.0.1:1"\nmetrics: false\nhooks:\n  - module: ${JSON.stringify(path.relative(dir, module))}\n`);
    const r = spawnSync(process.execPath, [CLI, 'check', '--config', file], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 1, `check exits 1 (stdout ${r.stdout}, stderr ${r.stderr})`);
    assert.match(r.stderr, new RegExp(`version-mismatch\\.js.*2\\.0.*${HOOK_API_VERSION.replace('.', '\\.')}`, 's'), 'stderr names the module and both versions');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fast path: a hook that wants only ping is never called for any other command', { skip }, async () => {
  // Real: HookChain.hooksFor + the Pipeline's cut-through (src/proxy/pipeline.ts); litecoind confirms the others arrived.
  const proxy = await proxyWith(hooksYaml([{ module: fixture('recorder'), options: { label: 'fast' } }]));
  const { client } = track(await connectPeer(proxy.port));
  client.send('getaddr', {});
  client.send('inv', [{ type: 1, hash: Buffer.alloc(32, 7) }]);
  client.send('feefilter', { feeRate: 1000n });
  await pingRoundTrip(client, 1n);
  await pingRoundTrip(client, 2n);
  const seen = await backendPeer(node, proxy, client);
  for (const cmd of ['getaddr', 'inv', 'feefilter', 'ping', 'verack']) assert.ok(seen.bytesrecv_per_msg[cmd], `litecoind received ${cmd}`);
  assert.deepEqual(fixtureState().calls.get('fast'), ['ping', 'ping'], 'called for the two pings only');
  assert.equal(await invocations(proxy, 'recorder'), 2);
});

test('ordering: with an async hook delaying pings and pongs at random, pongs come back in order', { skip }, async () => {
  // Real: the per-direction lanes (src/proxy/lanes.ts) with src/hooks/chain.ts going async.
  const proxy = await proxyWith(hooksYaml([{ module: fixture('delay'), options: { maxMs: 8 } }]));
  const { client } = track(await connectPeer(proxy.port));
  const n = 120;
  const from = client.frames.length;
  const burst = Buffer.concat(Array.from({ length: n }, (_, i) => encodeFrame(regtest, 'ping', Buffer.from(pingHex(BigInt(i + 1)), 'hex')).raw));
  client.sendRaw(burst); // one write: the frames arrive together, later ones must queue
  await waitFor(() => client.frames.slice(from).filter((f) => f.command === 'pong').length >= n, 20_000, `${n} pongs`);
  const nonces = client.frames.slice(from).filter((f) => f.command === 'pong').map((f) => Number(decodeMessage('pong', f.payload).nonce));
  assert.deepEqual(nonces, Array.from({ length: n }, (_, i) => i + 1));
  assert.ok((await invocations(proxy, 'delay')) >= 2 * n, 'the hook ran on every ping and pong');
});

test('bounded queue: behind a blocked async hook the peer socket is paused, queued bytes stay near hookQueue', { skip, timeout: 60_000 }, async () => {
  // Real: the Lane's queue and socket pause (settings.hookQueue); litecoind receives everything after release.
  const hookQueue = 64 * 1024;
  const frameSize = 16 * 1024;
  const frames = 1000; // 16 MB: far more than the socket buffers on both ends hold
  const proxy = await proxyWith(`limits: { hookQueue: ${hookQueue}, hookTimeout: 60s }\n${hooksYaml([{ module: fixture('gate') }])}`);
  const { client } = track(await connectPeer(proxy.port));
  const session = sessionOf(proxy, client);
  const before = other(await backendPeer(node, proxy, client));
  let release!: () => void;
  fixtureState().gate = new Promise<void>((r) => (release = r));
  client.send('ping', { nonce: 99n });
  await waitFor(() => fixtureState().gated.length === 1, 5000, 'the gate hook to hold the ping');
  const bytesAtBlock = session.info.bytesIn;
  const flood = encodeFrame(regtest, 'flood', Buffer.alloc(frameSize, 0xab)).raw;
  for (let i = 0; i < frames; i++) client.sendRaw(flood);
  await waitFor(() => session.peer.isPaused(), 5000, 'the proxy to pause reading from the peer');
  await sleep(500);
  const taken = session.info.bytesIn - bytesAtBlock;
  const bound = hookQueue + frameSize + 64 * 1024; // + the rest of the socket read in which the bound was crossed
  assert.ok(taken <= bound, `read ${taken} bytes behind the blocked hook, bound ${bound}`);
  assert.ok(client.socket.writableLength > 1_000_000, `the flood waits in the client (${client.socket.writableLength} bytes unsent)`);
  assert.ok(session.peer.isPaused(), 'still paused');
  fixtureState().gate = null;
  release();
  await client.waitFor('pong', 10_000, (f) => decodeMessage('pong', f.payload).nonce === 99n);
  await pingRoundTrip(client, 100n, 20_000);
  const after = other(await backendPeer(node, proxy, client));
  assert.equal(after - before, frames * (24 + frameSize), 'litecoind received every flood frame');
  assert.equal(session.closed, false);
  assert.equal(session.peer.isPaused(), false, 'reading resumed');
});

test('actions end to end: drop, replace, push and log, as litecoind and the peer see them', { skip }, async () => {
  // Real: HookChain#apply and PeerSession's ChainTarget methods; litecoind's getpeerinfo counts.
  const rules = {
    // litecoind 0.21 disconnects a peer that sends mempool (no bloom filters): dropped, it never knows
    mempool: { action: 'drop', log: { level: 'warn', msg: 'dropped a mempool request', why: 'test' } },
    getaddr: { replace: { command: 'ping', hex: pingHex(0x77n) } },
    hello1: { action: 'drop', push: [{ command: 'pong', hex: pingHex(0x99n) }, { command: 'pong', hex: pingHex(0x9an) }] },
  };
  const proxy = await proxyWith(hooksYaml([{ module: fixture('actions'), options: { rules } }]));
  const { client } = track(await connectPeer(proxy.port));
  const otherBefore = other(await backendPeer(node, proxy, client));
  client.send('mempool', {});
  client.send('getaddr', {});
  await client.waitFor('pong', 5000, (f) => decodeMessage('pong', f.payload).nonce === 0x77n); // litecoind answered the replacement
  client.sendRaw(encodeFrame(regtest, 'hello1').raw);
  await client.waitFor('pong', 5000, (f) => decodeMessage('pong', f.payload).nonce === 0x9an);
  const pushed = client.frames.filter((f) => f.command === 'pong').map((f) => decodeMessage('pong', f.payload).nonce);
  assert.deepEqual(pushed.slice(-2), [0x99n, 0x9an], 'both pushed messages, in order');
  await pingRoundTrip(client, 5n);
  const seen = await backendPeer(node, proxy, client);
  assert.equal(seen.bytesrecv_per_msg.mempool, undefined, 'litecoind never received mempool');
  assert.equal(seen.bytesrecv_per_msg.getaddr, undefined, 'litecoind never received getaddr');
  assert.equal(seen.bytesrecv_per_msg.ping, 2 * 32, 'litecoind received the replacement ping and our ping');
  assert.equal(other(seen), otherBefore, 'the dropped hello1 did not reach litecoind');
  assert.equal(client.isClosed, false);
  const line = proxy.logs.find((l) => l.msg === 'dropped a mempool request');
  assert.ok(line, 'the log line was written');
  assert.equal(line.hook, 'actions');
  assert.equal(line.why, 'test');
  assert.equal(line.level, 40, 'at warn');
  assert.match(String(line.peer), /^127\.0\.0\.1:\d+$/, 'attributed to the peer');
  for (const action of ['drop', 'replace', 'push', 'log']) {
    assert.ok((await proxy.metricValue('bhp_hook_actions_total', { hook: 'actions', action })) >= 1, `bhp_hook_actions_total{action="${action}"}`);
  }
});

test('actions end to end: misbehave to the threshold bans, ban bans, disconnect disconnects', { skip }, async () => {
  // Real: PeerSession.misbehave/ban/disconnect → ProxyServer's ban list and accept checks.
  const rules = { bad1: { misbehave: { points: 40, reason: 'bad1 sent' } }, ban1: { ban: { reason: 'ban1 sent', duration: '1h' } }, bye1: { disconnect: 'bye1 sent' } };
  const proxy = await proxyWith(`bans: { threshold: 100 }\n${hooksYaml([{ module: fixture('actions'), options: { rules } }])}`);
  const bad1 = encodeFrame(regtest, 'bad1').raw;

  const a = track(await connectPeer(proxy.port, { localAddress: loopbackAddress(11) })).client;
  a.sendRaw(bad1);
  a.sendRaw(bad1);
  await pingRoundTrip(a, 1n); // 80 points: still served
  assert.equal(sessionOf(proxy, a).info.misbehaviour, 80);
  a.sendRaw(bad1);
  assert.ok(await a.closedWithin(5000), 'the third bad1 (120 points) closes the peer');
  assert.ok(proxy.proxy.bans.list().some((b) => b.subnet.startsWith(loopbackAddress(11))), 'its address is banned');

  const b = track(await connectPeer(proxy.port, { localAddress: loopbackAddress(12) })).client;
  b.sendRaw(encodeFrame(regtest, 'ban1').raw);
  assert.ok(await b.closedWithin(5000), 'ban closes the peer');
  const again = await P2PClient.connect(proxy.port, { localAddress: loopbackAddress(12) });
  again.socket.on('error', () => {});
  assert.ok(await again.closedWithin(3000), 'a banned address is refused at accept');
  assert.equal(await proxy.metricValue('bhp_bans_added_total', { reason: 'hook' }), 1);
  assert.equal(await proxy.metricValue('bhp_bans_added_total', { reason: 'misbehaviour' }), 1);

  const c = track(await connectPeer(proxy.port, { localAddress: loopbackAddress(13) })).client;
  c.sendRaw(encodeFrame(regtest, 'bye1').raw);
  assert.ok(await c.closedWithin(5000), 'disconnect closes the peer');
  assert.equal(proxy.proxy.bans.list().some((x) => x.subnet.startsWith(loopbackAddress(13))), false, 'not banned');
  const c2 = track(await connectPeer(proxy.port, { localAddress: loopbackAddress(13) })).client;
  await pingRoundTrip(c2, 3n); // may come back at once
  assert.equal(await proxy.metricValue('bhp_connections_closed_total', { reason: 'hook' }), 1);
});

test('a throwing, a malformed and a hanging hook drop only their peer (hook_error); another peer is served throughout', { skip }, async () => {
  // Real: HookChain#call (throw, checkResult, withTimeout) → PeerSession.fault; metrics bhp_hook_errors_total.
  const proxy = await proxyWith(`limits: { hookTimeout: 300ms }\n${hooksYaml([{ module: fixture('faulty'), options: { throw: 'boom', hang: 'hang1', malformed: 'weird' } }])}`);
  const bystander = track(await connectPeer(proxy.port)).client;
  let pings = 0;
  let stop = false;
  const traffic = (async () => {
    while (!stop) await pingRoundTrip(bystander, BigInt(1000 + pings++), 2000);
  })();
  for (const [command, kind] of [['boom', 'throw'], ['weird', 'malformed'], ['hang1', 'timeout']] as const) {
    const victim = track(await connectPeer(proxy.port)).client;
    const t0 = Date.now();
    victim.sendRaw(encodeFrame(regtest, command).raw);
    assert.ok(await victim.closedWithin(3000), `${command}: the peer is disconnected`);
    if (kind === 'timeout') assert.ok(Date.now() - t0 >= 250, 'after its time budget');
    assert.equal(await proxy.metricValue('bhp_hook_errors_total', { hook: 'faulty', kind }), 1, `counted as ${kind}`);
    assert.ok(proxy.logs.some((l) => l.msg === 'hook incompatibility: disconnecting peer' && l.hook === 'faulty' && l.kind === kind), `logged (${kind})`);
  }
  await sleep(100);
  stop = true;
  await traffic;
  assert.ok(pings >= 5, `the bystander kept pinging (${pings} round trips)`);
  assert.equal(bystander.isClosed, false);
  assert.equal(await proxy.metricValue('bhp_connections_closed_total', { reason: 'hook_error' }), 3);
});

test('reload under traffic: no dropped connection, the new chain applies, old chain closed; a broken module is refused', { skip }, async () => {
  // Real: RunningProxy.reload (src/app.ts) swapping proxy.chain under a live PeerSession.
  const proxy = await proxyWith(hooksYaml([{ module: fixture('recorder'), options: { label: 'old' } }]));
  const { client } = track(await connectPeer(proxy.port));
  const session = sessionOf(proxy, client);
  let n = 0;
  let stop = false;
  const traffic = (async () => {
    while (!stop) await pingRoundTrip(client, BigInt(++n), 3000);
  })();
  await waitFor(() => (fixtureState().calls.get('old')?.length ?? 0) >= 3, 5000, 'pings through the old chain');
  const withHooks = (hooks: { module: string; options?: Record<string, unknown> }[]) => ({
    ...proxy.config,
    hooks: hooks.map((h) => ({ module: h.module, options: h.options ?? {}, enabled: true })),
  });
  assert.match(await proxy.reload(withHooks([{ module: fixture('recorder'), options: { label: 'new' } }])), /recorder/);
  assert.deepEqual(fixtureState().closed, ['old'], 'close() ran on the old chain');
  await waitFor(() => (fixtureState().calls.get('new')?.length ?? 0) >= 3, 5000, 'pings through the new chain');
  const oldCount = fixtureState().calls.get('old')!.length;

  await assert.rejects(proxy.reload(withHooks([{ module: fixture('recorder'), options: { label: 'never' } }, { module: fixture('version-mismatch') }])), /2\.0/);
  assert.ok(proxy.logs.some((l) => l.msg.startsWith('reload refused')), 'the refusal is logged');
  assert.deepEqual(fixtureState().closed, ['old', 'never'], 'the half-loaded chain was closed, the running one was not');
  const newCount = fixtureState().calls.get('new')!.length;
  await waitFor(() => fixtureState().calls.get('new')!.length >= newCount + 3, 5000, 'pings still through the running chain');
  stop = true;
  await traffic;
  assert.equal(fixtureState().calls.get('old')!.length, oldCount, 'the old chain saw nothing after the reload');
  assert.deepEqual(fixtureState().calls.get('never'), [], 'the refused chain never ran');
  assert.equal(client.isClosed, false);
  assert.equal(session.closed, false);
  assert.equal(proxy.proxy.sessions().length, 1, 'same single session');
});

test('x: commands never reach litecoind; registered ones are handled, unknown ones answered x:unknown or dropped', { skip }, async () => {
  // Real: PeerSession's x: routing and HookChain.runX; litecoind's *other* byte count (0.21 counts unknown commands there).
  const proxy = await proxyWith(hooksYaml([{ module: fixture('x-feature') }]));
  const { client } = track(await connectXPeer(proxy.port));
  await pingRoundTrip(client, 1n);
  const before = await backendPeer(node, proxy, client);
  const from = client.frames.length;
  client.sendRaw(encodeFrame(regtest, 'x:echo', Buffer.from('abc')).raw);
  client.sendRaw(encodeFrame(regtest, 'x:nobody', Buffer.from('zzz')).raw);
  const echo = await client.waitFor('x:echo', 5000, () => true, from);
  assert.equal(echo.payload.toString(), 'abc');
  const unknown = await client.waitFor('x:unknown', 5000, () => true, from);
  assert.equal(new PayloadReader(unknown.payload, 'x:unknown').varString('command', 12), 'x:nobody');
  await pingRoundTrip(client, 2n);
  const afterX = await backendPeer(node, proxy, client);
  assert.deepEqual(Object.keys(afterX.bytesrecv_per_msg).filter((k) => k.startsWith('x')), [], 'no x: command in litecoind accounting');
  assert.equal(other(afterX), other(before), 'litecoind received no unknown command');
  // control: a non-x unknown command does reach litecoind and shows up in *other*
  client.sendRaw(encodeFrame(regtest, 'nothx').raw);
  await pingRoundTrip(client, 3n);
  assert.equal(other(await backendPeer(node, proxy, client)), other(before) + 24, 'the control frame is counted');
  assert.equal(await proxy.metricValue('bhp_x_commands_total', { outcome: 'handled' }), 1);
  assert.equal(await proxy.metricValue('bhp_x_commands_total', { outcome: 'unknown' }), 1);

  const dropping = await proxyWith(`xUnknown: drop\n${hooksYaml([{ module: fixture('x-feature') }])}`);
  const quiet = track(await connectXPeer(dropping.port)).client;
  const start = quiet.frames.length;
  quiet.sendRaw(encodeFrame(regtest, 'x:nobody').raw);
  await pingRoundTrip(quiet, 4n);
  await sleep(100);
  assert.deepEqual(quiet.frames.slice(start).map((f) => f.command).filter((c) => c.startsWith('x:') && c !== 'x:note'), [], 'nothing answered');
  assert.equal(await dropping.metricValue('bhp_x_commands_total', { outcome: 'unknown' }), 1, 'counted');
  assert.equal(quiet.isClosed, false);
});

test('BIP 434: a 70017 peer gets the injected feature after the version and before the verack; x: pushes reach only announcers', { skip }, async () => {
  // Real: Handshake (src/proxy/handshake.ts: version rewrite, HookChain.features, feature recording) and PeerSession.sendMessage, litecoind's version 70016.
  const proxy = await proxyWith(hooksYaml([{ module: fixture('x-feature') }]));
  const a = track(await connectXPeer(proxy.port));
  const commands = a.handshake.map((f) => f.command);
  const iv = commands.indexOf('version');
  const ifeat = commands.indexOf('feature');
  const iverack = commands.indexOf('verack');
  assert.ok(iv >= 0 && ifeat > iv && iverack > ifeat, `version < feature < verack in ${commands.join(',')}`);
  assert.equal(a.theirVersion.version, 70017, "litecoind's 70016 raised to 70017");
  const feature = decodeMessage('feature', a.handshake[ifeat]!.payload);
  assert.equal(feature.featureId, X_FEATURE_ID);
  assert.equal(feature.data.toString(), 'fixture');
  assert.ok(sessionOf(proxy, a.client).info.features.has(X_FEATURE_ID), 'the peer\'s announcement is recorded');

  const b = track(await connectPeer(proxy.port, { version: 70016 }));
  assert.equal(b.handshake.filter((f) => f.command === 'feature').length, 0, 'no feature message for a 70016 peer');
  assert.equal(b.theirVersion.version, 70016, 'version left as is');
  const c = track(await connectPeer(proxy.port, { version: 70017 })); // 70017, but did not announce our feature
  assert.equal(c.handshake.filter((f) => f.command === 'feature').length, 1, 'a 70017 peer is told about the feature');

  for (const p of [a, b, c]) await pingRoundTrip(p.client, 7n);
  const notes = (p: typeof a) => p.client.frames.filter((f) => f.command === 'x:note').length;
  assert.equal(notes(a), 1, 'the announcer got the x: push');
  assert.equal(notes(b), 0, 'the 70016 peer did not');
  assert.equal(notes(c), 0, 'the 70017 peer that did not announce did not');
  assert.equal(await proxy.metricValue('bhp_x_commands_total', { outcome: 'refused' }), 2);
});
