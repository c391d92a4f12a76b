/**
 * Three proxy processes (the built CLI) sharing one Redis, in front of one node: a ban through
 * one proxy's admin API is refused at the other two; Redis killed mid-traffic does not interrupt
 * relayed traffic, /ready says degraded and bhp_store_up drops to 0, and after the restart the
 * ban made during the outage reaches the others.
 *
 * Real implementations: Debian's redis-server (started by the test on a free port; skipped,
 * visibly, when absent), a regtest litecoind (Bitcoin Core 0.21's P2P code) as the backend,
 * three `node dist/src/cli.js run` processes, and our P2P test client (the peer).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient, httpRequest } from '../support/p2p-client.js';
import { startProxyProcess, type ProxyProcess } from '../support/proxy-process.js';
import { RedisServer, redisSkipReason } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

const skip = redisSkipReason() || litecoindSkipReason();
let node: Litecoind;
let redis: RedisServer;
let proxies: ProxyProcess[] = [];

before(async () => {
  if (skip) return;
  [node, redis] = await Promise.all([startLitecoind({ name: 'fleet', disableWallet: true }), RedisServer.start()]);
  const yaml = `store: { redis: "${redis.url}", prefix: "fleet:", syncInterval: 2s }`;
  proxies = await Promise.all([0, 1, 2].map(() => startProxyProcess(node.p2pPort, yaml)));
});
after(async () => {
  await Promise.all(proxies.map((p) => p.stop()));
  await redis?.stop();
  await node?.stop();
});

const listed = async (p: ProxyProcess, subnet: string) => ((await p.admin('GET', '/bans')).json.bans as { subnet: string }[]).some((b) => b.subnet === subnet);

async function refused(p: ProxyProcess, from: string): Promise<boolean> {
  const c = await P2PClient.connect(p.port, { localAddress: from });
  c.socket.on('error', () => {});
  const closed = await c.closedWithin(5000);
  await c.close();
  return closed;
}

test('a ban through one proxy is enforced by the other two', { skip }, async () => {
  const [a, b, c] = proxies as [ProxyProcess, ProxyProcess, ProxyProcess];
  // the address works everywhere first
  const before = await P2PClient.connect(c.port, { localAddress: '127.0.3.7' });
  await before.handshake();
  const started = Date.now();
  const r = await a.admin('POST', '/bans', { subnet: '127.0.3.7', duration: '1h', reason: 'fleet test' });
  assert.equal(r.status, 201, r.text);
  await waitFor(async () => (await listed(b, '127.0.3.7/32')) && (await listed(c, '127.0.3.7/32')), 20_000, 'the ban at proxies B and C');
  console.log(`ban seen at B and C ${Date.now() - started} ms after POST /bans at A (goal: within 1 s)`);
  await waitFor(() => before.isClosed, 20_000, 'the session at C from the banned address to be closed');
  assert.equal(await refused(b, '127.0.3.7'), true, 'B refuses the banned address');
  assert.equal(await refused(c, '127.0.3.7'), true, 'C refuses the banned address');
  const other = await P2PClient.connect(b.port, { localAddress: '127.0.3.8' });
  await other.handshake();
  await other.close();
  // lifted at B: lifted at A too
  assert.equal((await b.admin('DELETE', '/bans/127.0.3.7')).status, 200);
  await waitFor(async () => !(await listed(a, '127.0.3.7/32')), 20_000, 'the unban at A');
});

test('Redis killed mid-traffic: relayed traffic goes on, /ready degraded, bans reconcile after restart', { skip }, async () => {
  const [a, b] = proxies as [ProxyProcess, ProxyProcess, ProxyProcess];
  const peer = await P2PClient.connect(a.port, { localAddress: '127.0.3.20' });
  await peer.handshake();
  let pings = 0;
  let failed: unknown = null;
  let stop = false;
  const traffic = (async () => {
    while (!stop) {
      try {
        await peer.ping(10_000);
        pings++;
      } catch (err) {
        failed = err;
        return;
      }
    }
  })();
  await waitFor(() => pings > 5, 20_000, 'pings through proxy A');
  await redis.kill();
  await waitFor(async () => (await httpRequest(a.adminPort, 'GET', '/ready')).json?.degraded === true, 20_000, '/ready at A to say degraded');
  const ready = await httpRequest(a.adminPort, 'GET', '/ready');
  assert.equal(ready.status, 200, 'still ready: peers are served on local state');
  assert.equal(ready.json.store, 'down');
  assert.match((await httpRequest(a.metricsPort, 'GET', '/metrics')).text, /^bhp_store_up 0$/m);
  const during = pings;
  await waitFor(() => pings > during + 5, 20_000, 'pings to go on while Redis is down');
  const ban = await a.admin('POST', '/bans', { subnet: '127.0.3.30', duration: '1h', reason: 'made during the outage' });
  assert.equal(ban.status, 201, 'a ban is acknowledged (on disk) during the outage');
  assert.equal(await listed(b, '127.0.3.30/32'), false, 'B cannot know yet');
  await redis.restart();
  await waitFor(async () => listed(b, '127.0.3.30/32'), 30_000, 'the outage ban to reach B after the restart');
  await waitFor(async () => (await httpRequest(a.adminPort, 'GET', '/ready')).json?.degraded === false, 20_000, '/ready at A to stop saying degraded');
  assert.match((await httpRequest(a.metricsPort, 'GET', '/metrics')).text, /^bhp_store_up 1$/m);
  stop = true;
  await traffic;
  assert.equal(failed, null, `a ping failed: ${String(failed)}`);
  assert.equal(peer.isClosed, false, 'the peer stayed connected throughout');
  await peer.close();
  const outages = a.output().split('\n').filter((l) => l.includes('shared store unreachable')).length;
  assert.equal(outages, 1, 'one log line for the outage');
});
