/**
 * BIP324 v2 terminated at the proxy (`v2: terminate`), over real sockets to a real node.
 * Real implementations: litecoind 0.21 from Debian (Bitcoin Core 0.21's P2P code, regtest) as
 * the node behind the proxy, which speaks only v1: the proxy is the v2 responder. The v2
 * initiators are the proxy's own (an OutboundSession relay for a second litecoind that syncs
 * blocks; the v2 bridge of test/support for the v1 test clients), so both ends of each v2 link
 * are ours, checked against the BIP's vectors in v2-vectors.test.ts; the nodes at both ends of
 * the path are real.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import { NETWORKS } from '../../src/codec/index.js';
import { HookChain } from '../../src/hooks/chain.js';
import { NODE_P2P_V2 } from '../../src/proxy/handshake.js';
import { nullObserver } from '../../src/proxy/observer.js';
import { OutboundSession } from '../../src/proxy/outbound-session.js';
import type { SessionHost, SessionSettings } from '../../src/proxy/peer-session.js';
import { dialPeer } from '../../src/proxy/transport/v2/dial.js';
import { fixtureState } from '../hooks/fixtures/state.js';
import { fixture, hooksYaml } from '../hooks/support.js';
import { X_PROTOCOL_FEATURE_ID, XClient } from '../hooks/x-protocol-client.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { startV2Bridge } from '../support/v2-bridge.js';
import { waitFor } from '../support/wait.js';
import { testSessionSettings } from '../support/session-settings.js';
import { cleanupStack } from '../support/cleanup.js';

const skip = litecoindSkipReason();
const regtest = NETWORKS.regtest;

test('a v1 client through a v2 link: handshake, NODE_P2P_V2 in the version, ping, hooks and metrics', { skip, timeout: 120_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node: Litecoind = await startLitecoind({ name: 'v2-backend', disableWallet: true });
  cleanup.push(() => node.stop());
  const label = 'v2-smoke';
  const proxy: TestProxy = await startTestProxy(node.p2pPort, `v2: terminate\n${hooksYaml([{ module: fixture('wants'), options: { label, inbound: ['ping'], outbound: ['pong'] } }])}`, { metrics: true });
  cleanup.push(() => proxy.close());
  if (process.env.BHP_V2_DEBUG) cleanup.push(() => console.log(proxy.logs.map((l) => JSON.stringify(l)).join('\n')));
  const bridge = await startV2Bridge(proxy.port, regtest);
  cleanup.push(() => bridge.close());

  const client = await P2PClient.connect(bridge.port);
  cleanup.push(() => client.close());
  const theirs = await client.handshake(20_000);
  assert.equal(theirs.services & NODE_P2P_V2, NODE_P2P_V2, 'the proxy sets NODE_P2P_V2 in the version bitcoind sends');
  await client.ping(10_000);
  assert.ok(bridge.links[0], 'the link is v2 (no fallback)');
  assert.equal(bridge.links[0]!.ready, true);
  const [session] = proxy.proxy.sessions();
  assert.equal(session?.info.transport, 'v2');
  assert.equal(session?.info.handshakeComplete, true);
  const calls = fixtureState().calls.get(label)!;
  assert.ok(calls.includes('inbound:ping') && calls.includes('outbound:pong'), `hooks saw the frames (${calls.join(',')})`);
  assert.equal(await proxy.metricValue('bhp_v2_sessions_total', { role: 'responder' }), 1);
  assert.ok((await proxy.metricValue('bhp_messages_total', { command: 'ping', direction: 'inbound' })) >= 1, 'metrics count v2 frames by command');
  assert.ok((await proxy.metricValue('bhp_messages_total', { command: 'version', direction: 'outbound' })) === 1);
});

const RELAY_SETTINGS: SessionSettings = testSessionSettings({ network: regtest, v2: 'terminate' });

/**
 * Our node's side (stands in for the SOCKS5 front a later issue adds): the node connects here,
 * the relay dials `target` as a v2 initiator (falling back to v1 as Core does) and relays
 * through an OutboundSession, the proxy's session kind for our node's outbound connections.
 */
async function startOutboundRelay(targetPort: number, v2: boolean) {
  const sessions: OutboundSession[] = [];
  const v2Sessions: string[] = [];
  const ended: string[] = [];
  const host: SessionHost = {
    observer: { ...nullObserver, v2Session: (role) => void v2Sessions.push(role) },
    log: pino({ level: 'silent' }),
    chain: HookChain.empty({ network: regtest, maxMessageSize: 4_000_000, timeoutMs: 5000 }),
    sessionEnded: (_s, reason) => void ended.push(reason),
    misbehaving: () => {},
    banSession: () => {},
  };
  const server = net.createServer({ pauseOnConnect: true }, (node) => {
    node.on('error', () => {});
    dialPeer({ host: '127.0.0.1', port: targetPort, v2, timeoutMs: 10_000 }).then(
      ({ socket, v2: opening }) => {
        const s = new OutboundSession(sessions.length + 1, node, socket, '127.0.0.1', RELAY_SETTINGS, host, opening);
        sessions.push(s);
        s.start();
      },
      () => node.destroy(),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    sessions,
    v2Sessions,
    ended,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.close('shutdown');
        server.close(() => r());
      }),
  };
}

test('a second litecoind syncs blocks and a transaction through a v2 link (OutboundSession initiator → proxy responder)', { skip, timeout: 180_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const a: Litecoind = await startLitecoind({ name: 'v2-a' });
  cleanup.push(() => a.stop());
  const label = 'v2-sync';
  const proxy = await startTestProxy(a.p2pPort, `v2: terminate\n${hooksYaml([{ module: fixture('wants'), options: { label, inbound: ['getheaders', 'getdata'], outbound: ['headers', 'block'] } }])}`, { metrics: true });
  cleanup.push(() => proxy.close());
  const relay = await startOutboundRelay(proxy.port, true);
  cleanup.push(() => relay.close());

  await a.generate(110);
  const b = await startLitecoind({ name: 'v2-b', extraArgs: [`-connect=127.0.0.1:${relay.port}`] });
  cleanup.push(() => b.stop());
  await b.waitForHeight(110, 90_000);
  assert.equal(await b.getBestBlockHash(), await a.getBestBlockHash());
  await a.generate(3);
  await b.waitForHeight(113, 60_000);
  const txid = (await a.rpc('sendtoaddress', [await b.getNewAddress(), 1])) as string;
  await waitFor(async () => ((await b.rpc('getrawmempool', [])) as string[]).includes(txid), 60_000, 'the transaction to reach B over v2');

  assert.deepEqual(relay.v2Sessions, ['initiator'], 'the relay spoke v2 as initiator');
  assert.equal(relay.sessions[0]?.info.transport, 'v2');
  const [session] = proxy.proxy.sessions();
  assert.equal(session?.info.transport, 'v2');
  assert.match(session?.info.userAgent ?? '', /LitecoinCore/, "B's version reached the proxy over v2");
  const peerOfB = (await b.getPeerInfo()).find((p) => !p.inbound);
  assert.ok(peerOfB && (BigInt('0x' + peerOfB.services) & NODE_P2P_V2) !== 0n, 'B sees NODE_P2P_V2 in the version A sent through the proxy');
  const calls = fixtureState().calls.get(label)!;
  for (const c of ['inbound:getheaders', 'inbound:getdata', 'outbound:headers', 'outbound:block']) assert.ok(calls.includes(c), `hooks saw ${c}`);
  assert.equal(await proxy.metricValue('bhp_v2_sessions_total', { role: 'responder' }), 1);
  const blocks = await proxy.metricValue('bhp_messages_total', { command: 'block', direction: 'outbound' });
  assert.ok(blocks >= 100, `metrics count blocks sent over v2 (${blocks})`);
  assert.equal(await proxy.metricValue('bhp_v2_failures_total'), 0);
  assert.deepEqual(relay.ended, []);
});

test('x: over v2: the features hook answers x:hello to a client whose link is v2 (long-form commands)', { skip, timeout: 120_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'v2-x', disableWallet: true });
  cleanup.push(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, `v2: terminate\n${hooksYaml([{ module: new URL('../../hooks/features.js', import.meta.url).pathname }])}`);
  cleanup.push(() => proxy.close());
  const bridge = await startV2Bridge(proxy.port, regtest);
  cleanup.push(() => bridge.close());
  const x = await XClient.connect(bridge.port);
  cleanup.push(() => x.p2p.close());
  assert.ok(x.offered, 'the proxy announced its feature over v2');
  assert.ok(x.offered.commands.includes('x:hello'));
  const hello = await x.hello();
  assert.equal(hello.network, 'regtest');
  assert.ok(hello.features.includes(X_PROTOCOL_FEATURE_ID));
  assert.ok(bridge.links[0]?.ready, 'the link was v2');
  assert.equal(proxy.proxy.sessions()[0]?.info.transport, 'v2');
});

test('x: over v2 after outbound frames a hook passed: the answer is not held back behind them', { skip, timeout: 120_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'v2-x-held', disableWallet: true });
  cleanup.push(() => node.stop());
  // an outbound hook that passes pongs: litecoind's pongs run through the hooks as a run of a read
  const hooks = hooksYaml([{ module: new URL('../../hooks/features.js', import.meta.url).pathname }, { module: fixture('wants'), options: { label: 'v2-held', inbound: [], outbound: ['pong'] } }]);
  const proxy = await startTestProxy(node.p2pPort, `v2: terminate\n${hooks}`);
  cleanup.push(() => proxy.close());
  const bridge = await startV2Bridge(proxy.port, regtest);
  cleanup.push(() => bridge.close());
  const x = await XClient.connect(bridge.port);
  cleanup.push(() => x.p2p.close());
  for (let i = 0; i < 3; i++) {
    await x.p2p.ping(); // the pong came through the outbound hook
    const hello = await x.hello(); // the features hook's answer is injected toward the peer
    assert.equal(hello.network, 'regtest');
  }
  assert.equal(proxy.proxy.sessions()[0]?.info.transport, 'v2');
});

test('initiator fallback: a remote without v2 closes on our v2 opening, so the relay reconnects with v1 (as Core does)', { skip, timeout: 120_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  // litecoind 0.21 has no v2: it reads our key as a v1 header with a wrong magic and disconnects
  const remote = await startLitecoind({ name: 'v2-fallback-remote' });
  cleanup.push(() => remote.stop());
  await remote.generate(5);
  const relay = await startOutboundRelay(remote.p2pPort, true);
  cleanup.push(() => relay.close());
  const ours = await startLitecoind({ name: 'v2-fallback-ours', disableWallet: true, extraArgs: [`-connect=127.0.0.1:${relay.port}`] });
  cleanup.push(() => ours.stop());
  await ours.waitForHeight(5, 60_000);
  assert.equal(await ours.getBestBlockHash(), await remote.getBestBlockHash());
  assert.deepEqual(relay.v2Sessions, [], 'no v2 session');
  assert.equal(relay.sessions[0]?.info.transport, 'v1', 'the session runs v1 after the fallback');
});

test('our node speaking v2 itself on an outbound connection: the relay pipes it end to end (no second termination)', { skip, timeout: 120_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'v2-own', disableWallet: true });
  cleanup.push(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, 'v2: terminate');
  cleanup.push(() => proxy.close());
  // client (v1) → bridge (v2 initiator, standing for a node that speaks v2) → relay (v1 dial) → proxy (v2 responder) → litecoind
  const relay = await startOutboundRelay(proxy.port, false);
  cleanup.push(() => relay.close());
  const bridge = await startV2Bridge(relay.port, regtest);
  cleanup.push(() => bridge.close());
  const client = await P2PClient.connect(bridge.port);
  cleanup.push(() => client.close());
  await client.handshake(20_000);
  await client.ping(10_000);
  assert.ok(bridge.links[0]?.ready, 'the v2 link reaches the proxy through the relay');
  assert.equal(relay.sessions[0]?.info.transport, 'v2-passthrough');
  assert.equal(proxy.proxy.sessions()[0]?.info.transport, 'v2');
});
