/**
 * The README's first command: `npm start` runs the demo, a bcoin regtest node in-process with
 * the proxy in front. A second bcoin node (a real Bitcoin full node from npm) syncs through it,
 * and a buyer written from docs/x-protocol.md (test/hooks/paywall/doc-client.ts) sees the
 * paywall's offers and buys a pass the way the banner says (dev Lightning backend, settled
 * through the admin API; BOLT11 decoded by the independent bitcoinjs `bolt11`).
 * No fixed ports: the proxy port is a free one, and the test holds the demo's preferred metrics
 * and admin ports (when free) so the demo must fall back to ports the OS picks and say which.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBcoin, bcoinAvailable } from '../support/bcoin-node.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { httpRequest } from '../support/p2p-client.js';
import { cliAsync } from '../support/cli-process.js';
import { DEMO_PORTS } from '../../src/demo.js';
import bolt11 from 'bolt11';
import { PaywallClient } from '../hooks/paywall/doc-client.js';

/** Listen on `port` if it is free (to make it busy for the demo); null when it is taken already. */
function hold(port: number): Promise<net.Server | null> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(null));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(s));
  });
}

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('npm start runs the demo command', () => {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.start ?? '', /node dist\/src\/cli\.js demo$/);
});

test('the demo serves a real node: bcoin syncs its chain through the proxy', { skip: bcoinAvailable() ? false : 'bcoin not installed', timeout: 240_000 }, async (t) => {
  const port = await freePort();
  const held = [await hold(DEMO_PORTS.metrics), await hold(DEMO_PORTS.admin)];
  t.after(() => held.forEach((s) => s?.close()));
  const child = spawn(process.execPath, [path.join(root, 'dist/src/cli.js'), 'demo', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  t.after(() => child.kill('SIGKILL'));
  await waitFor(() => output.includes(`proxy on 127.0.0.1:${port}`) && output.includes('Ctrl-C'), 120_000, 'the demo to start').catch((err: Error) => assert.fail(`${err.message}; the demo printed: ${output.slice(-2000)}`));
  assert.doesNotMatch(output, /litecoind -regtest -connect/, 'litecoind cannot sync from the demo chain; the banner must not suggest it');
  assert.match(output, /litecoind[\s\S]*cannot sync/);
  const metricsPort = Number(/curl -s 127\.0\.0\.1:(\d+)\/metrics/.exec(output)?.[1]);
  const adminPort = Number(/peers --admin 127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
  assert.ok(metricsPort > 0 && adminPort > 0, output);
  if (held[0]) assert.notEqual(metricsPort, DEMO_PORTS.metrics);
  if (held[1]) assert.notEqual(adminPort, DEMO_PORTS.admin);
  const metrics = await httpRequest(metricsPort, 'GET', '/metrics');
  assert.match(metrics.text, /^bhp_connections 0$/m, 'the banner names the metrics port the demo really uses');
  const peer = await startBcoin({ name: 'demo-peer', listen: false });
  t.after(() => peer.stop());
  peer.connectTo('127.0.0.1', port);
  await peer.waitForHeight(10, 60_000);
  assert.ok(peer.node.chain.height >= 10);
  assert.equal((await httpRequest(metricsPort, 'GET', '/ready')).status, 200, 'ready once a peer reached bcoin');
  // the banner's peers line, typed as printed: the bcoin peer is listed
  const bannerToken = /BHP_ADMIN_TOKEN=(\S+) npx bitcoin-hook-proxy peers/.exec(output)?.[1];
  assert.ok(bannerToken, output);
  const peers = await cliAsync(['peers', '--admin', `127.0.0.1:${adminPort}`], { ...process.env, BHP_ADMIN_TOKEN: bannerToken });
  assert.equal(peers.status, 0, peers.stderr);
  assert.match(peers.stdout, /^ID +ADDRESS .*\n +\d+ +127\.0\.0\.1:\d+ .*\/bcoin:/);

  // paid access with no Lightning node, as the banner says, by a client that follows
  // x-protocol.md §7 (announce the x: feature only to a version of 70017+): the shipped
  // `offers` command of docs/buyer.md, then the document's own buyer
  const token = /Bearer ([0-9a-f]+)'/.exec(output)?.[1];
  assert.ok(token && output.includes(`127.0.0.1:${adminPort}/hooks/paywall/settle`), 'the banner says how to pay');
  const listed = await cliAsync(['offers', `127.0.0.1:${port}`, '--network', 'regtest']);
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, /^pro +pass +pro +2000 sat/m);
  const buyer = await PaywallClient.connect(port);
  t.after(() => buyer.close());
  const offers = await buyer.offers();
  assert.equal(offers.network, 'regtest');
  const pro = offers.offers.find((o) => o.id === 'pro');
  assert.deepEqual([pro?.kind, pro?.tier, pro?.priceMsat], [1, 'pro', 2_000_000n], 'the pro pass is offered');
  assert.ok(offers.offers.some((o) => o.id === 'credit'), 'metered credit is offered');
  const inv = await buyer.invoice('pro');
  assert.ok(inv.ok, 'an invoice');
  assert.equal(bolt11.decode(inv.value.bolt11, { bech32: 'bcrt', pubKeyHash: 0x6f, scriptHash: 0xc4, validWitnessVersions: [0, 1] }).millisatoshis, '2000000');
  const paid = await httpRequest(adminPort, 'POST', '/hooks/paywall/settle', { token, body: { bolt11: inv.value.bolt11 } });
  assert.equal(paid.status, 200, paid.text);
  const grant = await buyer.claim(inv.value.paymentHash, inv.value.claimToken, Buffer.from(paid.json.preimage, 'hex'));
  assert.ok(grant.ok && grant.value.tier === 'pro', 'the pass is granted');
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  assert.equal(code, 0, output);
});

test('demo --port on a port another process holds: one line naming --port, the port and what to do', { skip: bcoinAvailable() ? false : 'bcoin not installed', timeout: 60_000 }, async (t) => {
  // it said only "listen EADDRINUSE: address already in use 127.0.0.1:N"
  const busy = await hold(await freePort());
  assert.ok(busy, 'a port to hold');
  t.after(() => busy.close());
  const port = (busy.address() as net.AddressInfo).port;
  const r = await cliAsync(['demo', '--port', String(port)]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, new RegExp(`demo --port ${port}: cannot listen: address already in use .*leave --port out`));
});
