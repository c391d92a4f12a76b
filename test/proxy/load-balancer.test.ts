/**
 * HAProxy in TCP mode with `send-proxy-v2` in front of two proxies that share bans through
 * Redis: the proxies see the real client address (127.0.4.x, not HAProxy's 127.0.0.1), a ban
 * of that address at one proxy refuses it through the balancer whichever proxy it lands on,
 * a PROXY header from an untrusted source is refused, and a trusted source that sends no header
 * is refused too.
 *
 * Real implementations: Debian's haproxy and redis-server (started by the test on free ports;
 * skipped, visibly, when absent), a regtest litecoind as the backend, two `node dist/src/cli.js
 * run` processes, our P2P test client as the peers.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { haproxyMissing, startHaproxy, type Haproxy } from '../support/haproxy.js';
import { startProxyProcess, type ProxyProcess } from '../support/proxy-process.js';
import { RedisServer, redisSkipReason } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

const skip = haproxyMissing || redisSkipReason() || litecoindSkipReason();
let node: Litecoind;
let redis: RedisServer;
let proxies: ProxyProcess[] = [];
let haproxy: Haproxy;
let lbPort: number;

before(async () => {
  if (skip) return;
  [node, redis] = await Promise.all([startLitecoind({ name: 'lb', disableWallet: true }), RedisServer.start()]);
  const yaml = `store: { redis: "${redis.url}", prefix: "lb:" }\nproxyProtocol: { trusted: ["127.0.0.1/32"] }`;
  proxies = await Promise.all([0, 1].map(() => startProxyProcess(node.p2pPort, yaml)));
  haproxy = await startHaproxy(proxies.map((p) => p.port));
  lbPort = haproxy.port;
});
after(async () => {
  await haproxy?.stop();
  await Promise.all(proxies.map((p) => p.stop()));
  await redis?.stop();
  await node?.stop();
});

async function peerAddresses(p: ProxyProcess): Promise<string[]> {
  return ((await p.admin('GET', '/peers')).json.peers as { address: string }[]).map((x) => x.address);
}

test('behind HAProxy the proxies see the real client address', { skip }, async () => {
  const clients: P2PClient[] = [];
  for (const n of [10, 11]) {
    const c = await P2PClient.connect(lbPort, { localAddress: `127.0.4.${n}` });
    await c.handshake();
    clients.push(c);
  }
  const seen = [...(await peerAddresses(proxies[0]!)), ...(await peerAddresses(proxies[1]!))];
  assert.deepEqual(seen.sort(), ['127.0.4.10', '127.0.4.11'], 'round robin put one on each proxy, each with its own address');
  for (const c of clients) await c.close();
});

test('a ban of the real address refuses it through the balancer, on either proxy', { skip }, async () => {
  const r = await proxies[1]!.admin('POST', '/bans', { subnet: '127.0.4.20', duration: '1h', reason: 'behind haproxy' });
  assert.equal(r.status, 201, r.text);
  await waitFor(async () => ((await proxies[0]!.admin('GET', '/bans')).json.bans as { subnet: string }[]).some((b) => b.subnet === '127.0.4.20/32'), 20_000, 'the ban at the other proxy');
  for (let i = 0; i < 4; i++) {
    // round robin: these attempts land on both proxies
    const c = await P2PClient.connect(lbPort, { localAddress: '127.0.4.20' });
    c.socket.on('error', () => {});
    assert.equal(await c.closedWithin(10_000), true, `attempt ${i} of the banned address was closed`);
  }
  const ok = await P2PClient.connect(lbPort, { localAddress: '127.0.4.21' });
  await ok.handshake();
  await ok.close();
  const refusedMetric = await Promise.all(proxies.map(async (p) => (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`).then((x) => x.text())).match(/^bhp_connections_refused_total\{reason="banned"\} (\d+)$/m)?.[1]));
  assert.ok(refusedMetric.every((n) => Number(n) >= 1), `both proxies refused the banned address: ${refusedMetric.join(', ')}`);
});

test('a PROXY header from an untrusted source is refused, and so is a trusted source without one', { skip }, async () => {
  const p = proxies[0]!;
  // 127.0.4.30 is not trusted: its header claims to be 127.0.4.99
  const spoof = await P2PClient.connect(p.port, { localAddress: '127.0.4.30' });
  spoof.socket.on('error', () => {});
  const h = Buffer.alloc(28);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(h);
  h[12] = 0x21;
  h[13] = 0x11;
  h.writeUInt16BE(12, 14);
  Buffer.from([127, 0, 4, 99, 127, 0, 0, 1, 0x9c, 0x40, 0x20, 0x8d]).copy(h, 16);
  spoof.sendRaw(h);
  assert.equal(await spoof.closedWithin(10_000), true, 'the spoofing connection was closed');
  assert.ok(!(await peerAddresses(p)).includes('127.0.4.99'));
  // the trusted balancer's address without a header: refused, not served as 127.0.0.1
  const bare = await P2PClient.connect(p.port, { localAddress: '127.0.0.1' });
  bare.socket.on('error', () => {});
  bare.send('version', bare.versionMessage());
  assert.equal(await bare.closedWithin(10_000), true, 'a trusted source without a header was closed');
  await waitFor(() => p.output().includes('"reason":"proxy_protocol"'), 10_000, 'the refusal logged with reason proxy_protocol');
});
