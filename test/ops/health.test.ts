/**
 * /health and /ready on the metrics listener (no token), and the metrics that say the same
 * to Prometheus: bhp_backend_up, bhp_build_info, bhp_config_reload_success.
 *
 * Real implementations: a bcoin 1.0.2 regtest full node (npm) as the backend, reached through
 * the proxy by our raw P2P client; the proxy's own metrics listener queried over HTTP.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config.js';
import { bcoinAvailable, startBcoin, type BcoinNode } from '../support/bcoin-node.js';
import { P2PClient, httpRequest } from '../support/p2p-client.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { waitFor } from '../support/wait.js';
import { freePort } from '../support/ports.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The value of one sample line of a scrape, or undefined when the series is absent. */
function scraped(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `) || (!labels && l.startsWith(`${name}{`)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('the metrics listener answers /health and /ready without a token; ready only once the backend answered', { skip: bcoinAvailable() ? false : 'bcoin not installed', timeout: 90_000 }, async (t) => {
  let node: BcoinNode | undefined = await startBcoin({ name: 'health-backend' });
  let proxy: TestProxy | undefined;
  const clients: P2PClient[] = [];
  t.after(async () => {
    for (const c of clients) await c.close();
    await proxy?.close();
    await node?.stop();
  });
  proxy = await startTestProxy(node.port, '', { metrics: true });
  const port = proxy.metricsPort!;
  const scrape = async () => (await httpRequest(port, 'GET', '/metrics')).text;

  await t.test('before any backend connection: alive, not ready, bhp_backend_up absent', async () => {
    const health = await httpRequest(port, 'GET', '/health');
    assert.equal(health.status, 200);
    assert.deepEqual(health.json, { status: 'ok' });
    const ready = await httpRequest(port, 'GET', '/ready');
    assert.equal(ready.status, 503);
    assert.equal(ready.json.ready, false);
    assert.equal(ready.json.backendUp, null, 'never checked is not "up"');
    assert.equal(ready.json.listening.length, 1);
    const text = await scrape();
    assert.equal(scraped(text, 'bhp_backend_up'), undefined);
    assert.equal(scraped(text, 'bhp_build_info', `version="${VERSION}",node="${process.version}"`), 1);
    assert.equal(scraped(text, 'bhp_config_reload_success'), 1, 'the config loaded at start counts as a success');
    assert.equal((await httpRequest(port, 'GET', '/nothing')).status, 404);
    assert.equal((await httpRequest(port, 'POST', '/ready')).status, 404);
  });

  await t.test('with the start-up probe (the CLI default) the proxy is ready before any peer; a dead backend is found without one', async () => {
    const probing = await startTestProxy(node!.port, '', { metrics: true, probeBackend: true });
    t.after(() => probing.close());
    await waitFor(async () => (await httpRequest(probing.metricsPort!, 'GET', '/ready')).status === 200, 20_000, 'the probe to find bcoin');
    assert.equal(probing.proxy.sessions().length, 0, 'no peer was needed');
    const dead = await startTestProxy(await freePort(), '', { metrics: true, probeBackend: true });
    t.after(() => dead.close());
    await waitFor(async () => (await httpRequest(dead.metricsPort!, 'GET', '/ready')).json.backendUp === false, 20_000, 'the probe to find no backend');
    assert.equal((await httpRequest(dead.metricsPort!, 'GET', '/ready')).status, 503);
  });

  await t.test('a peer reached bcoin through the proxy: ready, bhp_backend_up 1', async () => {
    const c = await P2PClient.connect(proxy!.port);
    clients.push(c);
    await c.handshake(20_000);
    const ready = await httpRequest(port, 'GET', '/ready');
    assert.equal(ready.status, 200);
    assert.equal(ready.json.ready, true);
    assert.equal(ready.json.backendUp, true);
    assert.equal(scraped(await scrape(), 'bhp_backend_up', `backend="127.0.0.1:${node!.port}"`), 1);
  });

  await t.test('a refused reload sets bhp_config_reload_success 0, the next good one 1', async () => {
    const bad = parseConfig(`network: regtest\nbackend: 127.0.0.1:${node!.port}\nhooks: [{ module: ./no-such-hook.js }]`, path.join(ROOT, 'health-test.yaml'));
    await assert.rejects(proxy!.reload(bad));
    assert.equal(scraped(await scrape(), 'bhp_config_reload_success'), 0);
    assert.equal((await httpRequest(port, 'GET', '/ready')).status, 200, 'a refused reload keeps the proxy ready');
    await proxy!.reload(parseConfig(`network: regtest\nbackend: 127.0.0.1:${node!.port}`, path.join(ROOT, 'health-test.yaml')));
    assert.equal(scraped(await scrape(), 'bhp_config_reload_success'), 1);
  });

  await t.test('bcoin stopped: the next peer is refused, /ready 503, bhp_backend_up 0', async () => {
    for (const c of clients.splice(0)) await c.close();
    await node!.stop();
    node = undefined;
    const c = await P2PClient.connect(proxy!.port);
    clients.push(c);
    await c.closed;
    await waitFor(async () => (await httpRequest(port, 'GET', '/ready')).status === 503, 20_000, '/ready to turn 503');
    const ready = await httpRequest(port, 'GET', '/ready');
    assert.equal(ready.json.backendUp, false);
    assert.equal(scraped(await scrape(), 'bhp_backend_up'), 0);
    assert.equal((await httpRequest(port, 'GET', '/health')).status, 200, 'alive while the backend is down');
  });
});
