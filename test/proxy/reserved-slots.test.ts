/**
 * Reserved slots: with `limits.maxPeers` full the proxy admits up to `limits.reservedPeers` more;
 * a peer in a reserved slot keeps it once a hook marks it paid (ctx.setPriority), here the
 * paywall on a grant (x:claim) and on a credential (x:auth), and is disconnected with
 * `reserve_timeout` otherwise. Priority peers are never evicted.
 *
 * Real implementations: a regtest litecoind 0.21 (Bitcoin Core 0.21's P2P code) behind the
 * proxy; the peers are the x: client written from docs/x-protocol.md (test/hooks/paywall/
 * doc-client.ts) over real sockets from distinct 127/8 addresses. Lightning: the paywall's dev
 * backend (real BOLT11 invoices signed with a local key), paid through the admin API's settle.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { httpRequest } from '../support/p2p-client.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { waitFor } from '../support/wait.js';
import { PaywallClient, type Answer } from '../hooks/paywall/doc-client.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const hook = (p: string) => path.resolve(here, '../../hooks', p);
const skip = litecoindSkipReason();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'bhp-reserved-'));
const keysFile = path.join(tmp, 'keys');
writeFileSync(keysFile, `1 ${createHash('sha256').update('reserved-slots.test.ts key').digest('hex')}\n`, { mode: 0o600 });
/** long enough for a purchase on a loaded machine; the test waits for it, never measures it */
const AUTH_TIMEOUT = '8s';

let node: Litecoind;
let proxy: TestProxy;

function ok<T>(a: Answer<T>): T {
  if (!a.ok) assert.fail(`refused: ${a.refuse.code} ${a.refuse.message}`);
  return a.value;
}

before(async () => {
  if (skip) return;
  node = await startLitecoind({ name: 'reserved' });
  const paywall = { backend: { kind: 'dev' }, store: { file: path.join(tmp, 'paywall.json') }, keys: { file: keysFile }, passes: { pro: { priceSats: 2000, duration: '24h' } } };
  proxy = await startTestProxy(
    node.p2pPort,
    [
      `limits: { maxPeers: 2, reservedPeers: 2, reservedAuthTimeout: ${AUTH_TIMEOUT} }`,
      'hooks:',
      `  - { module: ${JSON.stringify(hook('features.js'))} }`,
      `  - { module: ${JSON.stringify(hook('paywall/index.js'))}, options: ${JSON.stringify(paywall)} }`,
    ].join('\n'),
    { admin: true },
  );
});

after(async () => {
  await proxy?.close();
  await node?.stop();
});

interface PeerJson {
  id: number;
  address: string;
  reserved: boolean;
  priority: boolean;
}
const peers = async (): Promise<PeerJson[]> => (await httpRequest(proxy.adminPort!, 'GET', '/peers', { token: proxy.adminToken })).json.peers;
const byAddress = async (address: string) => (await peers()).find((p) => p.address === address);
const reserveTimeouts = () => proxy.metricValue('bhp_connections_closed_total', { reason: 'reserve_timeout' });

test('maxPeers full: a paying peer keeps a reserved slot (after a claim, and after auth on reconnect); a non-paying one is dropped after the timeout', { skip, timeout: 180_000 }, async () => {
  const free = [await PaywallClient.connect(proxy.port, { localAddress: '127.20.0.2' }), await PaywallClient.connect(proxy.port, { localAddress: '127.21.0.2' })];
  const open: PaywallClient[] = [...free];
  try {
    await waitFor(async () => (await peers()).length === 2, 10_000, 'the two regular slots taken');
    assert.ok((await peers()).every((p) => !p.reserved));

    // a buyer arrives when every regular slot is taken: it gets a reserved slot and pays
    const buyer = await PaywallClient.connect(proxy.port, { localAddress: '127.30.0.2' });
    open.push(buyer);
    assert.equal((await byAddress('127.30.0.2'))?.reserved, true, 'admitted into a reserved slot');
    const inv = ok(await buyer.invoice('pro'));
    const paid = await httpRequest(proxy.adminPort!, 'POST', '/hooks/paywall/settle', { token: proxy.adminToken, body: { paymentHash: inv.paymentHash.toString('hex') } });
    assert.equal(paid.status, 200, paid.text);
    const grant = ok(await buyer.claim(inv.paymentHash, inv.claimToken, Buffer.from(paid.json.preimage, 'hex')));
    assert.deepEqual((({ reserved, priority }) => ({ reserved, priority }))((await byAddress('127.30.0.2'))!), { reserved: true, priority: true });

    // a peer that does not pay takes the other reserved slot and loses it (it came after the buyer, so its clock ran out later)
    const before = await reserveTimeouts();
    const idler = await PaywallClient.connect(proxy.port, { localAddress: '127.31.0.2' });
    open.push(idler);
    assert.equal((await byAddress('127.31.0.2'))?.reserved, true);
    await waitFor(() => idler.p2p.isClosed, 60_000, 'the non-paying peer to be disconnected');
    assert.equal((await reserveTimeouts()) - before, 1, 'closed as reserve_timeout');
    assert.equal(buyer.p2p.isClosed, false, 'the paying peer keeps its reserved slot');
    assert.equal((await buyer.balance()).tier, 'pro');
    assert.ok(free.every((c) => !c.p2p.isClosed), 'nobody was evicted');

    // the buyer reconnects (regular slots still full) and presents its credential
    await buyer.close();
    await waitFor(async () => !(await byAddress('127.30.0.2')), 10_000, 'the old session gone');
    const back = await PaywallClient.connect(proxy.port, { localAddress: '127.30.0.2' });
    open.push(back);
    assert.equal((await byAddress('127.30.0.2'))?.reserved, true);
    ok(await back.auth(grant.credential));
    const idler2 = await PaywallClient.connect(proxy.port, { localAddress: '127.32.0.2' });
    open.push(idler2);
    await waitFor(() => idler2.p2p.isClosed, 60_000, 'the second non-paying peer to be disconnected');
    assert.equal((await reserveTimeouts()) - before, 2);
    assert.equal(back.p2p.isClosed, false, 'authenticated with its credential: it keeps the slot');
    assert.equal((await byAddress('127.30.0.2'))?.priority, true);
  } finally {
    await Promise.all(open.map((c) => c.close().catch(() => {})));
  }
});

test('with regular and reserved slots all taken a new peer is refused: priority peers are not evicted', { skip, timeout: 120_000 }, async () => {
  await waitFor(async () => (await peers()).length === 0, 10_000, 'the first test\'s peers gone');
  const open: PaywallClient[] = [];
  try {
    for (const a of ['127.40.0.2', '127.41.0.2']) open.push(await PaywallClient.connect(proxy.port, { localAddress: a }));
    // two buyers in the two reserved slots
    for (const a of ['127.42.0.2', '127.43.0.2']) {
      const c = await PaywallClient.connect(proxy.port, { localAddress: a });
      open.push(c);
      const inv = ok(await c.invoice('pro'));
      const paid = await httpRequest(proxy.adminPort!, 'POST', '/hooks/paywall/settle', { token: proxy.adminToken, body: { paymentHash: inv.paymentHash.toString('hex') } });
      ok(await c.claim(inv.paymentHash, inv.claimToken, Buffer.from(paid.json.preimage, 'hex')));
    }
    const refusedBefore = await proxy.metricValue('bhp_connections_refused_total', { reason: 'max_peers' });
    await assert.rejects(PaywallClient.connect(proxy.port, { localAddress: '127.44.0.2' }), 'no slot for a fifth peer');
    assert.equal((await proxy.metricValue('bhp_connections_refused_total', { reason: 'max_peers' })) - refusedBefore, 1);
    assert.ok(open.every((c) => !c.p2p.isClosed), 'no one was evicted for it');
  } finally {
    await Promise.all(open.map((c) => c.close().catch(() => {})));
  }
});
