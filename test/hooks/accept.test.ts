/**
 * The onAccept hook point: called before the backend connection is opened, in chain order,
 * synchronous or async under the hook time limit; a refusal, ban, throw, rejection, timeout or
 * malformed result costs bitcoind no connection, and the proxy keeps serving everyone else.
 *
 * Real implementations: the real proxy (startProxy, hook modules loaded by path from
 * dist/test/hooks/fixtures/) in front of a real regtest litecoind 0.21 (Bitcoin Core 0.21's P2P
 * code); backend connections are counted by a TCP relay in front of the node
 * (test/support/tcp-recorder.ts). Peers are our raw P2P client bound to 127.0.0.0/8 addresses.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HookLoadError } from '../../src/hooks/index.js';
import { createHookHarness } from '../../src/hooks/testing.js';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { TcpRecorder } from '../support/tcp-recorder.js';
import { waitFor } from '../support/wait.js';
import { acceptCalls } from './fixtures/accept.js';
import { fixture, hooksYaml } from './support.js';
import { cleanupStack } from '../support/cleanup.js';

test('onAccept through the real proxy: refuse, ban, faults and timeouts refuse without a backend connection; accepted peers are served', { skip: litecoindSkipReason(), timeout: 90_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'accept', disableWallet: true });
  cleanup.push(() => node.stop());
  const relay = await TcpRecorder.start('127.0.0.1', node.p2pPort);
  cleanup.push(() => relay.close());
  const rules = {
    '127.0.5.1': 'refuse',
    '127.0.5.2': 'ban',
    '127.0.5.3': 'throw',
    '127.0.5.4': 'reject',
    '127.0.5.5': 'hang',
    '127.0.5.6': 'malformed',
    '127.0.5.7': 'block',
  };
  const proxy = await startTestProxy(
    relay.port,
    ['limits: { hookTimeout: 200ms }', hooksYaml([{ module: fixture('accept'), options: { rules, delayMs: 20 } }])].join('\n'),
    { metrics: true },
  );
  cleanup.push(() => proxy.close());

  // a peer that is accepted (after an async 20 ms) and stays served through everything below
  const good = await P2PClient.connect(proxy.port, { localAddress: '127.0.6.1' });
  cleanup.push(() => good.close());
  await good.handshake();
  await good.ping();
  assert.equal(relay.connections.length, 1);
  assert.ok(acceptCalls().some((c) => c.startsWith('127.0.6.1:') && c.endsWith(`>${proxy.port}`)), 'the hook saw address, port and the local port');

  const refused = async (address: string) => {
    const c = await P2PClient.connect(proxy.port, { localAddress: address });
    c.socket.on('error', () => {});
    cleanup.push(() => c.close());
    c.send('version', c.versionMessage());
    assert.equal(await c.closedWithin(5000), true, `${address} (${rules[address as keyof typeof rules]}) is refused`);
    assert.equal(c.frames.length, 0);
  };
  for (const address of Object.keys(rules)) await refused(address);
  assert.equal(relay.connections.length, 1, 'no backend connection for any refused peer');

  assert.equal(await proxy.metricValue('bhp_connections_refused_total', { reason: 'hook' }), 1);
  assert.equal(await proxy.metricValue('bhp_connections_refused_total', { reason: 'banned' }), 1);
  assert.equal(await proxy.metricValue('bhp_connections_refused_total', { reason: 'hook_error' }), 5, 'throw, reject, hang, malformed, block');
  for (const kind of ['throw', 'timeout', 'malformed']) assert.ok((await proxy.metricValue('bhp_hook_errors_total', { hook: 'accept-rules', kind })) >= 1, `a ${kind} error is counted`);
  const ban = proxy.proxy.bans.find('127.0.5.2');
  assert.ok(ban, 'ban: the address is banned');
  assert.match(ban.reason, /hook accept-rules: listed as banned/);
  assert.ok(ban.until - Date.now() > 7_100_000 && ban.until - Date.now() <= 7_200_000, 'for the 2h the hook asked');
  assert.ok(proxy.logs.some((l) => l.msg === 'refusing' && l.hook === 'accept-rules'), 'the log line of the result is written, attributed to the hook');
  assert.ok(proxy.logs.some((l) => l.msg === 'onAccept hook failed: refusing the connection' && /did not settle within its budget of 200 ms/.test(String(l.err))));

  // the banned address is now refused before the hook is even asked
  const callsBefore = acceptCalls().length;
  await refused('127.0.5.2');
  assert.equal(acceptCalls().length, callsBefore, 'a banned address never reaches onAccept');

  await good.ping();
  assert.equal(good.isClosed, false, 'the accepted peer was served throughout');
  const late = await P2PClient.connect(proxy.port, { localAddress: '127.0.6.2' });
  cleanup.push(() => late.close());
  await late.handshake();
  await waitFor(() => relay.connections.length === 2, 2000, 'a second backend connection');
});

test('onAccept in the hook harness, and a non-function onAccept refuses to load', async () => {
  const h = await createHookHarness([{ module: fixture('accept'), options: { rules: { '192.0.2.1': 'refuse', '192.0.2.2': 'malformed' } } }]);
  assert.deepEqual(await h.accept({ address: '192.0.2.9' }), { kind: 'accept' });
  assert.deepEqual(await h.accept({ address: '192.0.2.1' }), { kind: 'refuse', hook: 'accept-rules', reason: 'listed as refused' });
  const bad = await h.accept({ address: '192.0.2.2' });
  assert.equal(bad.kind, 'fault');
  assert.match(bad.kind === 'fault' ? bad.fault.message : '', /onAccept returned a malformed result: unknown field "disconnect"/);
  await h.close();
  await assert.rejects(
    createHookHarness([{ module: { apiVersion: '1.2', name: 'broken', onAccept: 'yes' } as never }]),
    (err: unknown) => err instanceof HookLoadError && /onAccept must be a function/.test(err.message),
  );
});
