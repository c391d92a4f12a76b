/**
 * `outbound:` in the YAML starts the SOCKS5 front with the proxy (startProxy, as `run` does):
 * litecoind's own -proxy (Bitcoin Core 0.21's SOCKS5 client) connects through it to a second
 * litecoind, and the session runs the proxy's frame pipeline (counted in its metrics).
 * Real implementations: two litecoind (Debian) nodes; the proxy itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { freePort } from '../support/ports.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { waitFor } from '../support/wait.js';

test('outbound: in the config opens the SOCKS5 front; litecoind -proxy reaches another litecoind through it', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  const b = await startLitecoind({ name: 'outbound-cfg-b', disableWallet: true });
  t.after(() => b.stop());
  const socksPort = await freePort();
  const proxy = await startTestProxy(b.p2pPort, `outbound: { socks: { listen: "127.0.0.1:${socksPort}" }, wallet: ./outbound-wallet-${socksPort}.json }`, {});
  t.after(() => proxy.close());
  assert.ok(proxy.outbound, 'the outbound front is running');
  assert.deepEqual(proxy.outbound.socks.addresses().map((a) => a.port), [socksPort]);
  // a name, not 127.0.0.1: bitcoind sends loopback addresses around its -proxy (research note)
  const a = await startLitecoind({ name: 'outbound-cfg-a', disableWallet: true, extraArgs: [`-proxy=127.0.0.1:${socksPort}`, `-connect=localhost:${b.p2pPort}`] });
  t.after(() => a.stop());
  await waitFor(async () => ((await a.rpc('getpeerinfo')) as unknown[]).length === 1, 60_000, 'litecoind A to connect through the SOCKS5 front');
  await waitFor(async () => (await proxy.metricValue('bhp_messages_total', { command: 'verack' })) >= 2, 30_000, 'the outbound session to count both veracks');
});
