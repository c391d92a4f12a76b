/**
 * Hooks that break where the chain's per-call checks did not look: a close() that never settles
 * (at a reload, at shutdown), an onDisconnect that returns a promise that rejects (an `async
 * onDisconnect` writing to a store that is down), a push that cannot be framed (a command longer
 * than 12 bytes, a payload over maxMessageSize). Each is one broken hook: the proxy must go on
 * serving everyone else. And reloads asked for one after another all apply.
 *
 * Real implementations: a regtest litecoind (Bitcoin Core 0.21's P2P code) behind the proxy; the
 * proxy in process (startProxy) for the reloads, the built CLI as a child process for the
 * rejection and the pushes (what is at stake is the process); our P2P client as the peers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { encodeFrame, NETWORKS } from '../../src/codec/index.js';
import { HOOK_API_VERSION } from '../../src/hooks/index.js';
import { cleanupStack } from '../support/cleanup.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { httpRequest } from '../support/p2p-client.js';
import { startProxyProcess } from '../support/proxy-process.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { sleep, waitFor } from '../support/wait.js';
import { connectPeer, pingRoundTrip } from './support.js';

const skip = litecoindSkipReason();
let node: Litecoind;

before(async () => {
  if (!skip) node = await startLitecoind({ name: 'hook-lifecycle', disableWallet: true });
});
after(async () => {
  await node?.stop();
});

/** A hook module file `name.mjs` (absolute path) with `body` as its default export's members. */
function hookModule(t: TestContext, name: string, body: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-hook-life-'));
  cleanupStack(t).push(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, `${name}.mjs`);
  writeFileSync(file, `export default { apiVersion: ${JSON.stringify(HOOK_API_VERSION)}, name: ${JSON.stringify(name)}, ${body} };\n`);
  return file;
}

test('a hook whose close() never settles: the reload completes after hookTimeout, later reloads apply, the peer stays', { skip, timeout: 60_000 }, async (t) => {
  const steps = cleanupStack(t);
  const stuck = hookModule(t, 'stuck-close', 'close: () => new Promise(() => {})');
  const proxy = await startTestProxy(node.p2pPort, `limits: { hookTimeout: 500ms }\nhooks:\n  - module: ${JSON.stringify(stuck)}`, { metrics: true });
  steps.push(() => proxy.close());
  const { client } = await connectPeer(proxy.port);
  steps.push(() => client.close());
  const withHooks = (modules: string[]) => ({ ...proxy.config, hooks: modules.map((module) => ({ module, options: {}, enabled: true })) });
  const reloaded = (p: Promise<string>) => Promise.race([p, new Promise<string>((_, reject) => setTimeout(() => reject(new Error('the reload did not finish within 5 s')), 5000))]);
  // the old chain's close() hangs: the reload must still end, and say so
  assert.match(await reloaded(proxy.reload(withHooks([]))), /\(empty\)/);
  assert.ok(proxy.logs.some((l) => l.hook === 'stuck-close' && /close\(\) did not settle within its budget of 500 ms/.test(l.msg)), 'the hanging close() is logged, naming the hook');
  assert.equal(await proxy.metricValue('bhp_hook_errors_total', { hook: 'stuck-close', kind: 'timeout' }), 1);
  // and the next reload is a reload of its own, not the hung one again
  assert.match(await reloaded(proxy.reload(withHooks([stuck]))), /stuck-close/);
  await pingRoundTrip(client, 7n, 3000);
  assert.equal(client.isClosed, false);
  assert.equal(await proxy.metricValue('bhp_config_reload_success'), 1);
});

test('an onDisconnect that returns a rejected promise is logged and counted; the proxy keeps serving', { skip, timeout: 60_000 }, async (t) => {
  const steps = cleanupStack(t);
  const hook = hookModule(t, 'async-bye', 'onDisconnect: async () => { throw new Error("the store is down"); }');
  const proxy = await startProxyProcess(node.p2pPort, `hooks:\n  - module: ${JSON.stringify(hook)}`);
  steps.push(() => proxy.stop());
  const first = await connectPeer(proxy.port);
  await first.client.close();
  await waitFor(() => proxy.output().includes('the store is down') || proxy.proc.exitCode !== null, 10_000, 'the rejection to be noticed');
  await sleep(500); // an unhandled rejection would take the process down by now
  assert.equal(proxy.proc.exitCode, null, `the proxy process is still running: ${proxy.output().slice(-600)}`);
  const second = await connectPeer(proxy.port);
  steps.push(() => second.client.close());
  await pingRoundTrip(second.client, 8n, 3000);
  assert.match((await httpRequest(proxy.metricsPort, 'GET', '/metrics')).text, /^bhp_hook_errors_total\{hook="async-bye",kind="throw"\} 1$/m);
});

test('a reload asked for while another is loading runs after it: the last config asked for is the one running', { skip, timeout: 60_000 }, async (t) => {
  const steps = cleanupStack(t);
  // the first reload's chain takes a second to load (its hook's init), as a real one might
  const slow = hookModule(t, 'slow-init', 'init: () => new Promise((r) => setTimeout(r, 1000))');
  const marker = hookModule(t, 'marker', 'wants: { inbound: ["ping"] }, onMessage() {}');
  const proxy = await startTestProxy(node.p2pPort, '');
  steps.push(() => proxy.close());
  const { client } = await connectPeer(proxy.port);
  steps.push(() => client.close());
  const withHooks = (modules: string[]) => ({ ...proxy.config, hooks: modules.map((module) => ({ module, options: {}, enabled: true })) });
  const first = proxy.reload(withHooks([slow]));
  const second = proxy.reload(withHooks([marker])); // the operator changed the file again meanwhile
  assert.match(await first, /slow-init/);
  assert.match(await second, /marker/, 'the second reload reports its own chain');
  assert.deepEqual(proxy.proxy.chain.hooks.map((h) => h.name), ['marker'], 'the last config asked for runs');
  await pingRoundTrip(client, 9n, 3000);
  await waitFor(async () => (await proxy.metricValue('bhp_hook_calls_total', { hook: 'marker' })) >= 1, 3000, 'the running chain to see the ping');
});

test('pushes that cannot be framed fault only the peer they answer; the proxy serves the others', { skip, timeout: 60_000 }, async (t) => {
  const steps = cleanupStack(t);
  // the ping's nonce picks the bad push: too long a command, or too big a payload; at once or from a promise
  const hook = hookModule(
    t,
    'bad-push',
    `wants: { inbound: ['ping'] },
  onMessage(msg) {
    const long = () => ({ push: [{ command: 'a-command-too-long' }] });
    const big = () => ({ push: [{ command: 'pong', payload: Buffer.alloc(2000) }] });
    const n = msg.decode().nonce;
    if (n === 1n) return long();
    if (n === 2n) return big();
    if (n === 3n) return Promise.resolve(long());
    if (n === 4n) return new Promise((r) => setImmediate(() => r(big())));
  }`,
  );
  const proxy = await startProxyProcess(node.p2pPort, `limits: { maxMessageSize: 1000 }\nhooks:\n  - module: ${JSON.stringify(hook)}`);
  steps.push(() => proxy.stop());
  const bystander = await connectPeer(proxy.port);
  steps.push(() => bystander.client.close());
  for (const nonce of [1n, 2n, 3n, 4n]) {
    const victim = await connectPeer(proxy.port);
    steps.push(() => victim.client.close());
    victim.client.sendRaw(encodeFrame(NETWORKS.regtest, 'ping', Buffer.from(new BigUint64Array([nonce]).buffer)).raw);
    assert.ok(await victim.client.closedWithin(5000), `nonce ${nonce}: the peer the hook answered is disconnected`);
    await sleep(300); // a throw out of the relay path would have taken the process down by now
    assert.equal(proxy.proc.exitCode, null, `nonce ${nonce}: the proxy process is alive: ${proxy.output().slice(-800)}`);
    await pingRoundTrip(bystander.client, 100n + nonce, 3000);
  }
  const metrics = (await httpRequest(proxy.metricsPort, 'GET', '/metrics')).text;
  assert.match(metrics, /^bhp_hook_errors_total\{hook="bad-push",kind="invalid_message"\} 4$/m);
  assert.match(metrics, /^bhp_connections_closed_total\{reason="hook_error"\} 4$/m);
});
