/**
 * hooks/peer-filter: unit tests through the real chain runner (createHookHarness, loading the
 * compiled module by path as the proxy does), and tests through the real proxy in front of a
 * real node. Real implementations: litecoind 0.21 from Debian (Bitcoin Core 0.21's P2P code,
 * regtest magic fabfb5da) as the backend and as a peer (user agent /LitecoinCore:0.21.2.1/);
 * our raw P2P test client (test/support/p2p-client.ts) as peers with chosen versions and
 * source addresses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHookHarness, type FakePeerInit } from '../../src/hooks/testing.js';
import { startLitecoind, litecoindSkipReason } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { TcpRecorder } from '../support/tcp-recorder.js';
import { sleep, waitFor } from '../support/wait.js';
import { cleanupStack } from '../support/cleanup.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MODULE = path.resolve(here, '../../hooks/peer-filter.js');
const EXAMPLE_LIST = path.resolve(here, '../../../deploy/lists/example-denylist.txt');
const hookYaml = (options: object) => `hooks:\n  - { module: ${JSON.stringify(MODULE)}, options: ${JSON.stringify(options)} }`;
const harness = (options: object) => createHookHarness([{ module: MODULE, options: options as Record<string, unknown> }]);

function tmpDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'bhp-peer-filter-'));
}

/** Why onAccept refused a connection from `address` (the reason, or `ban: reason`), or null when accepted. */
async function refusal(h: Awaited<ReturnType<typeof harness>>, address: string): Promise<string | null> {
  const d = await h.accept({ address });
  if (d.kind === 'accept') return null;
  if (d.kind === 'refuse') return d.reason;
  if (d.kind === 'ban') return `ban: ${d.reason}`;
  throw d.fault;
}

/** Connect a fake peer and deliver its version (the version checks). */
async function admit(h: Awaited<ReturnType<typeof harness>>, init: FakePeerInit) {
  const p = h.peer(init);
  if (p.closed) return p;
  const out = await h.deliver(p, 'inbound', 'version', Buffer.alloc(0)); // the hook reads the peer's recorded version fields
  if (!p.closed) assert.notEqual(out.forwarded, null, 'an accepted version is forwarded');
  return p;
}

test('minimum version, required and forbidden service bits', async () => {
  const h = await harness({ minVersion: 70015, services: { required: ['NETWORK', 'node_witness'], forbidden: ['bit:24', '0x4'] } });
  assert.equal(h.chain.hooksFor('inbound', 'ping').length, 0, 'only version leaves the fast path');
  assert.equal(h.chain.hooksFor('outbound', 'version').length, 0);
  assert.equal((await admit(h, { version: 70016, services: 0x409n })).closed, false);
  assert.match((await admit(h, { version: 70014, services: 0x409n })).disconnected ?? '', /protocol version 70014 is below 70015/);
  assert.match((await admit(h, { version: 70016, services: 0x401n })).disconnected ?? '', /lack required 0x9/);
  assert.match((await admit(h, { version: 70016, services: 0x1000409n })).disconnected ?? '', /include forbidden 0x1000000/);
  assert.match((await admit(h, { version: 70016, services: 0x40dn })).disconnected ?? '', /include forbidden 0x4/);
  await h.close();
});

test('user agent patterns: allow wins, then deny, then the default', async () => {
  const h = await harness({ userAgent: { deny: ['^/Satoshi:0\\.', 'bitcoinj'] } });
  assert.equal((await admit(h, { userAgent: '/Satoshi:27.0.0/' })).closed, false);
  assert.match((await admit(h, { userAgent: '/Satoshi:0.20.1/' })).disconnected ?? '', /user agent "\/Satoshi:0\.20\.1\/" is not accepted/);
  assert.equal((await admit(h, { userAgent: '/bitcoinj:0.16/' })).closed, true);
  await h.close();

  const only = await harness({ userAgent: { allow: ['^/Satoshi:2[5-9]\\.'], deny: ['.*'] } });
  assert.equal((await admit(only, { userAgent: '/Satoshi:27.1.0/' })).closed, false);
  assert.equal((await admit(only, { userAgent: '/Satoshi:24.0.0/' })).closed, true);
  assert.equal((await admit(only, { userAgent: '' })).closed, true, 'an empty user agent matches only .*');
  await only.close();
});

test('address lists: options and list files, CIDR, IPv6, IPv4-mapped; checked in onAccept', async () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'deny.txt');
    writeFileSync(file, '# shared deny list\n203.0.113.0/24   # a test net\n\n2001:db8::/32\n198.51.100.66\n');
    const h = await harness({ addresses: { deny: ['192.0.2.1'], denyFiles: [file], allow: ['203.0.113.9'] } });
    assert.match((await refusal(h, '203.0.113.77')) ?? '', /address 203\.0\.113\.77 is not accepted/);
    assert.equal(await refusal(h, '203.0.113.9'), null, 'allow wins over a denied subnet');
    assert.notEqual(await refusal(h, '2001:db8:1::5'), null);
    assert.equal(await refusal(h, '2001:db9::5'), null);
    assert.notEqual(await refusal(h, '::ffff:198.51.100.66'), null, 'an IPv4-mapped address matches as IPv4');
    assert.notEqual(await refusal(h, '192.0.2.1'), null);
    assert.equal(await refusal(h, '192.0.2.2'), null, 'not listed, no allow-only mode: accepted');
    await h.close();

    // allow entries only: everyone else is refused
    const only = await harness({ addresses: { allow: ['10.0.0.0/8', '::1'] } });
    assert.equal(await refusal(only, '10.1.2.3'), null);
    assert.equal(await refusal(only, '::1'), null);
    assert.notEqual(await refusal(only, '11.1.2.3'), null);
    await only.close();
    // the shipped example list parses and matches
    const example = await harness({ addresses: { denyFiles: [EXAMPLE_LIST] } });
    assert.notEqual(await refusal(example, '192.0.2.200'), null);
    assert.equal(await refusal(example, '203.0.113.127'), null);
    assert.notEqual(await refusal(example, '203.0.113.128'), null);
    assert.notEqual(await refusal(example, '2001:db8:0:1::1'), null);
    assert.equal(await refusal(example, '2001:db8:1::1'), null);
    await example.close();
    const explicit = await harness({ addresses: { allow: ['10.0.0.0/8'], default: 'accept' } });
    assert.equal(await refusal(explicit, '11.1.2.3'), null, 'default: accept');
    await explicit.close();

    // a relative path resolves against process.cwd(); a bad line names the file and the line
    writeFileSync(file, '10.0.0.1\n10.0.0.300\n');
    await assert.rejects(harness({ addresses: { denyFiles: [path.relative(process.cwd(), file)] } }), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} line 2: not an IPv4/IPv6 address`));
    await assert.rejects(harness({ addresses: { denyFiles: [path.join(dir, 'missing.txt')] } }), /cannot read list file .*missing\.txt/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('action ban with a duration', async () => {
  const h = await harness({ minVersion: 70016, action: 'ban', banDuration: '2h', addresses: { deny: ['192.0.2.0/24'] } });
  const p = await admit(h, { version: 70001 });
  assert.deepEqual(p.banned, { reason: 'peer-filter: protocol version 70001 is below 70016', duration: 7200 });
  assert.deepEqual(await h.accept({ address: '192.0.2.9' }), { kind: 'ban', hook: 'peer-filter', reason: 'peer-filter: address 192.0.2.9 is not accepted', duration: 7200 });
  await h.close();
});

test('with address lists only, no frame leaves the fast path', async () => {
  const h = await harness({ addresses: { deny: ['192.0.2.0/24'] } });
  assert.equal(h.chain.hooksFor('inbound', 'version').length, 0, 'the lists are checked in onAccept; version is not wanted');
  assert.equal(h.chain.acceptHooks.length, 1);
  await h.close();
});

test('bad options are refused with the key named', async () => {
  const cases: [object, RegExp][] = [
    [{ services: { required: ['TELEPORT'] } }, /options\.services\.required\.0: unknown service flag "TELEPORT"/],
    [{ userAgent: { deny: ['(unclosed'] } }, /options\.userAgent\.deny\.0: bad regular expression/],
    [{ addresses: { deny: ['10.0.0.0/33'] } }, /options\.addresses\.deny\.0: bad prefix length/],
    [{ addresses: { allow: ['example.com'] } }, /options\.addresses\.allow\.0: not an IPv4\/IPv6 address/],
    [{ action: 'shoot' }, /options\.action/],
    [{ banDuration: 'forever' }, /options\.banDuration: expected a duration/],
    [{ minVersion: 'new' }, /options\.minVersion/],
    [{ minversion: 70015 }, /options.*minversion/],
  ];
  for (const [options, re] of cases) await assert.rejects(harness(options), re, JSON.stringify(options));
});

// ---- through the real proxy, in front of a real node ----

test('a litecoind peer with a denied user agent is banned before its version reaches the backend', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const a = await startLitecoind({ name: 'pf-backend' });
  cleanup.push(() => a.stop());
  const proxy = await startTestProxy(a.p2pPort, hookYaml({ userAgent: { deny: ['^/LitecoinCore:'] }, action: 'ban', banDuration: '1h' }), { metrics: true });
  cleanup.push(() => proxy.close());
  const b = await startLitecoind({ name: 'pf-peer', extraArgs: [`-connect=127.0.0.1:${proxy.port}`] });
  cleanup.push(() => b.stop());

  await waitFor(() => proxy.proxy.bans.find('127.0.0.1'), 20_000, 'the proxy to ban the litecoind peer');
  const ban = proxy.proxy.bans.find('127.0.0.1')!;
  assert.match(ban.reason, /peer-filter: user agent "\/LitecoinCore:0\.21/);
  assert.ok(ban.until - Date.now() > 3_500_000 && ban.until - Date.now() <= 3_600_000, 'banned for 1h');
  await sleep(1500);
  const handshaken = (await a.getPeerInfo()).filter((p) => p.version > 0);
  assert.deepEqual(handshaken, [], 'the backend never saw the peer\'s version');
  assert.deepEqual((await b.getPeerInfo()).filter((p) => p.version > 0), [], 'the peer never completed a handshake');
  assert.ok((await proxy.metricValue('bhp_hook_peer_filter_rejected_total', { reason: 'user_agent', action: 'ban' })) >= 1);
});

test('raw peers: an old version and a denied address are disconnected, list files reload with the config', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const dir = tmpDir();
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const list = path.join(dir, 'deny.txt');
  writeFileSync(list, '# test deny list\n127.0.0.31\n');
  const node = await startLitecoind({ name: 'pf-raw' });
  cleanup.push(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, hookYaml({ minVersion: 70015, addresses: { denyFiles: [list] } }));
  cleanup.push(() => proxy.close());
  const connect = async (localAddress: string, userAgent: string) => {
    const c = await P2PClient.connect(proxy.port, { localAddress, userAgent });
    c.socket.on('error', () => {});
    cleanup.push(() => c.close());
    return c;
  };

  const listed = await connect('127.0.0.31', '/pf-listed/');
  assert.equal(await listed.closedWithin(5000), true, 'a listed address is refused at accept');
  assert.equal(listed.frames.length, 0, 'it got nothing from the node');

  const old = await connect('127.0.0.32', '/pf-old/');
  old.send('version', old.versionMessage({ version: 70002 }));
  assert.equal(await old.closedWithin(5000), true, 'version 70002 < 70015 is disconnected');
  assert.equal(old.frames.some((f) => f.command === 'verack'), false, 'no handshake');

  const good = await connect('127.0.0.32', '/pf-good/');
  await good.handshake(10_000, { version: 70016 });
  await good.ping();
  const peers = await node.getPeerInfo();
  assert.deepEqual(peers.filter((p) => p.version > 0).map((p) => p.subver), ['/pf-good/'], 'litecoind only ever got the accepted peer\'s version');

  // The list file changes; a reload (which re-inits the chain) reads it again.
  writeFileSync(list, '127.0.0.31\n127.0.0.32 # added\n');
  await proxy.reload(proxy.config);
  const after = await connect('127.0.0.32', '/pf-after/');
  assert.equal(await after.closedWithin(5000), true, 'the reloaded list refuses 127.0.0.32');
  assert.equal(good.isClosed, false, 'a reload drops no connection');
});

test('a denied address costs bitcoind no connection: refused in onAccept before the backend is contacted', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'pf-accept', disableWallet: true });
  cleanup.push(() => node.stop());
  // every connection the proxy opens to the node passes this relay, which counts them
  const relay = await TcpRecorder.start('127.0.0.1', node.p2pPort);
  cleanup.push(() => relay.close());
  const proxy = await startTestProxy(relay.port, hookYaml({ addresses: { deny: ['127.0.9.0/24'] } }), { metrics: true });
  cleanup.push(() => proxy.close());
  const peersBefore = (await node.getPeerInfo()).length;

  for (let i = 0; i < 20; i++) {
    const c = await P2PClient.connect(proxy.port, { localAddress: `127.0.9.${10 + i}` });
    c.socket.on('error', () => {});
    cleanup.push(() => c.close());
    c.send('version', c.versionMessage());
    assert.equal(await c.closedWithin(5000), true, `denied peer ${i} is refused`);
    assert.equal(c.frames.length, 0, 'it got nothing from the node');
  }
  assert.equal(relay.connections.length, 0, 'no backend connection was opened for a denied peer');
  assert.equal((await node.getPeerInfo()).length, peersBefore, "litecoind's peer list did not grow");
  assert.equal(await proxy.metricValue('bhp_connections_refused_total', { reason: 'hook' }), 20);
  assert.equal(await proxy.metricValue('bhp_hook_peer_filter_rejected_total', { reason: 'address', action: 'refuse' }), 20);

  // an address outside the list gets its backend connection and a handshake with the node
  const ok = await P2PClient.connect(proxy.port, { localAddress: '127.0.8.10' });
  cleanup.push(() => ok.close());
  await ok.handshake();
  await ok.ping();
  assert.equal(relay.connections.length, 1);
  assert.equal((await node.getPeerInfo()).length, peersBefore + 1);
});
