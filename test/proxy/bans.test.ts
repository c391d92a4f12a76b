/**
 * Bans: the admin API adds and removes them, banned addresses are refused at accept with no
 * backend connection, the ban file survives a restart and a kill -9 in the middle of a write,
 * and repeated disconnects by bitcoind ban the peer's real address.
 *
 * Real implementations: the proxy itself (startProxy, and the built CLI `node dist/src/cli.js
 * run` as a child process for kill -9, killed at moments drawn from a seeded PRNG); a real regtest litecoind for the backend-disconnect
 * ban (its `disconnectnode` RPC closes the session from bitcoind's side). Where the test must
 * count backend connections exactly, the backend is a plain net server that counts accepts
 * (the ban decision never looks at P2P bytes).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient, httpRequest, loopbackAddress } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';
import { ADMIN_TOKEN, startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { sleep, waitFor } from '../support/wait.js';
import { filePrng } from '../support/seed.js';

const rand = filePrng(import.meta.url);

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

/** A backend that accepts and holds connections, counting them. */
async function countingBackend(): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Connect from `localAddress`; resolves with the socket and whether the proxy closed it within `ms`. */
async function tryConnect(port: number, localAddress: string, ms = 1000): Promise<{ socket: net.Socket; closed: boolean }> {
  const c = await P2PClient.connect(port, { localAddress });
  c.socket.on('error', () => {});
  const closed = await c.closedWithin(ms);
  return { socket: c.socket, closed };
}

function readBanFile(file: string): { version: number; bans: { subnet: string; until: number }[] } {
  return JSON.parse(readFileSync(file, 'utf8')) as { version: number; bans: { subnet: string; until: number }[] };
}

test('admin API bans and unbans; a banned address is refused at accept with no backend connection; bans survive a restart', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-bans-'));
  const file = path.join(dir, 'bans.json');
  const backend = await countingBackend();
  const sockets: net.Socket[] = [];
  let proxy: TestProxy | undefined;
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await proxy?.close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const yaml = `bans: { file: "${file}" }`;
  proxy = await startTestProxy(backend.port, yaml, { admin: true });
  const admin = (method: string, p: string, body?: unknown, token: string | null = ADMIN_TOKEN) =>
    httpRequest(proxy!.adminPort!, method, p, { body, ...(token === null ? {} : { token }) });
  const banned = '127.0.0.9';

  // a session from the address, before the ban
  const first = await P2PClient.connect(proxy.port, { localAddress: banned });
  sockets.push(first.socket);
  await waitFor(() => backend.accepted() === 1, 2000, 'the backend connection of the first session');

  assert.equal((await admin('POST', '/bans', { address: banned }, null)).status, 401, 'no token: 401');
  assert.equal((await admin('POST', '/bans', { address: 'not-an-address' })).status, 400);
  const added = await admin('POST', '/bans', { address: banned, duration: '1h', reason: 'test' });
  assert.equal(added.status, 201);
  assert.equal(added.json.ban.subnet, `${banned}/32`);
  assert.ok(await first.closedWithin(2000), 'the running session of the banned address is closed');
  assert.equal(await proxy.metricValue('bhp_connections_closed_total', { reason: 'banned' }), 1);

  const refused = await tryConnect(proxy.port, banned);
  sockets.push(refused.socket);
  assert.ok(refused.closed, 'a banned address is closed at once');
  assert.equal(await proxy.metricValue('bhp_connections_refused_total', { reason: 'banned' }), 1);
  assert.ok(proxy.logs.some((l) => l.msg === 'connection refused' && l.reason === 'banned' && String(l.peer).startsWith(`${banned}:`)));

  // another address is not affected
  const other = await tryConnect(proxy.port, loopbackAddress(100), 300);
  sockets.push(other.socket);
  assert.equal(other.closed, false);
  await waitFor(() => backend.accepted() === 2, 2000, 'a backend connection for the unbanned address');

  // a subnet ban, then its removal
  assert.equal((await admin('POST', '/bans', { subnet: '127.0.1.0/24', duration: 3600 })).status, 201);
  const inSubnet = await tryConnect(proxy.port, '127.0.1.5');
  sockets.push(inSubnet.socket);
  assert.ok(inSubnet.closed, 'an address in a banned subnet is refused');
  assert.equal(backend.accepted(), 2, 'no backend connection for refused peers');
  assert.equal((await admin('DELETE', `/bans/${encodeURIComponent('127.0.1.0/24')}`)).status, 200);
  assert.equal((await admin('DELETE', `/bans/${encodeURIComponent('127.0.1.0/24')}`)).status, 404);
  const afterUnban = await tryConnect(proxy.port, '127.0.1.5', 300);
  sockets.push(afterUnban.socket);
  assert.equal(afterUnban.closed, false, 'accepted again after DELETE');
  await waitFor(() => backend.accepted() === 3, 2000, 'a backend connection after the unban');
  assert.equal(await proxy.metricValue('bhp_bans'), 1);

  const list = await admin('GET', '/bans');
  assert.deepEqual(list.json.bans.map((b: { subnet: string }) => b.subnet), [`${banned}/32`]);
  await waitFor(() => existsSync(file) && readBanFile(file).bans.length === 1, 2000, 'the ban file to hold one ban');
  assert.equal(readBanFile(file).bans[0]?.subnet, `${banned}/32`);

  // restart: the ban is loaded from the file
  await proxy.close();
  proxy = await startTestProxy(backend.port, yaml, { admin: true });
  assert.deepEqual((await admin('GET', '/bans')).json.bans.map((b: { subnet: string }) => b.subnet), [`${banned}/32`]);
  const afterRestart = await tryConnect(proxy.port, banned);
  sockets.push(afterRestart.socket);
  assert.ok(afterRestart.closed, 'still banned after a restart');
  assert.equal(await proxy.metricValue('bhp_connections_refused_total', { reason: 'banned' }), 1);
  assert.equal(await proxy.metricValue('bhp_bans'), 1);
  assert.equal(backend.accepted(), 3);
});

test('kill -9 of the CLI under concurrent POST /bans: every ban answered 201 is in the file and loaded by the restarted proxy; the file is never torn', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-bans-kill-'));
  const file = path.join(dir, 'bans.json');
  const config = path.join(dir, 'proxy.yaml');
  let child: ChildProcess | undefined;
  t.after(() => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  // start from 20,000 bans (a ~2.5 MB file), so that every save takes a while and a SIGKILL
  // often lands inside one, with many requests waiting on the same write
  const until = Date.now() + 3600_000;
  const seed = Array.from({ length: 20_000 }, (_, i) => ({ subnet: `172.16.${i >> 8}.${i & 255}/32`, until, reason: 'seed', created: Date.now() }));
  writeFileSync(file, JSON.stringify({ version: 1, bans: seed }));
  const acknowledged = new Set<string>(seed.map((b) => b.subnet));
  let killedMidWrite = 0;
  let answered = 0;

  /** Run the CLI on the ban file; resolves once its admin API answers. */
  const startCli = async () => {
    const adminPort = await freePort();
    writeFileSync(
      config,
      [
        'network: regtest',
        `listen: "127.0.0.1:${await freePort()}"`,
        `backend: "127.0.0.1:${await freePort()}"`,
        'metrics: false',
        `admin: { listen: "127.0.0.1:${adminPort}", token: "${ADMIN_TOKEN}" }`,
        'bans: { file: bans.json }',
        'log: { level: warn }',
      ].join('\n'),
    );
    const proc = spawn(process.execPath, [CLI, 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<NodeJS.Signals | number | null>((r) => proc.once('exit', (code, signal) => r(signal ?? code)));
    await waitFor(async () => (await httpRequest(adminPort, 'GET', '/health')).status === 200, 20_000, `the CLI admin API (stderr: ${stderr})`);
    return { proc, adminPort, exited };
  };

  /** Every acknowledged ban is listed by the running proxy (GET /bans reads what load() read). */
  const assertAllThere = async (adminPort: number, when: string) => {
    const list = await httpRequest(adminPort, 'GET', '/bans', { token: ADMIN_TOKEN });
    assert.equal(list.status, 200);
    const listed = new Set((list.json.bans as { subnet: string }[]).map((b) => b.subnet));
    const lost = [...acknowledged].filter((s) => !listed.has(s));
    assert.deepEqual(lost.slice(0, 20), [], `${when}: ${lost.length} of ${acknowledged.size} acknowledged bans lost`);
  };

  const rounds = 5;
  for (let round = 0; round < rounds; round++) {
    const { proc, adminPort, exited } = await startCli();
    await assertAllThere(adminPort, `start of round ${round}`);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], `round ${round}: the start removed the temporary files of killed writers`);
    // many bans as fast as the API takes them, from 16 concurrent clients; SIGKILL at a seeded moment
    let stop = false;
    let n = 0;
    const flood = Promise.all(
      Array.from({ length: 16 }, async () => {
        while (!stop) {
          const i = n++;
          const address = `10.${round}.${i >> 8}.${i & 255}`;
          const res = await httpRequest(adminPort, 'POST', '/bans', { token: ADMIN_TOKEN, body: { address, duration: '1h' } }).catch(() => null);
          if (res?.status === 201) {
            acknowledged.add(`${address}/32`);
            answered++;
          }
        }
      }),
    );
    await sleep(200 + rand() * 1500);
    proc.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    stop = true;
    await flood;
    if (readdirSync(dir).some((f) => f.endsWith('.tmp'))) killedMidWrite++;
    let data: ReturnType<typeof readBanFile>;
    try {
      data = readBanFile(file);
    } catch (err) {
      assert.fail(`round ${round}: the ban file is torn: ${(err as Error).message}`);
    }
    const onDisk = new Set(data.bans.map((b) => b.subnet));
    const lost = [...acknowledged].filter((s) => !onDisk.has(s));
    assert.deepEqual(lost.slice(0, 20), [], `round ${round}: ${lost.length} of ${acknowledged.size} acknowledged bans are not in the file`);
  }
  const { proc, adminPort } = await startCli();
  await assertAllThere(adminPort, 'after the last kill');
  proc.kill('SIGKILL');
  assert.ok(answered > 0, 'some bans were acknowledged');
  t.diagnostic(`${answered} bans acknowledged across ${rounds} SIGKILLs, none lost; ${killedMidWrite} kills landed inside a write (temporary file left)`);
});

test('litecoind disconnecting one address 3 times within the window bans it (bans.backendDisconnects.count: 3)', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  let ltc: Litecoind | undefined;
  let proxy: TestProxy | undefined;
  const clients: P2PClient[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await proxy?.close();
    await ltc?.stop();
  });
  ltc = await startLitecoind({ name: 'bans', disableWallet: true });
  proxy = await startTestProxy(ltc.p2pPort, 'bans: { backendDisconnects: { count: 3, window: 1m, duration: 1h } }');
  const p = proxy;
  const node = ltc;
  const victim = loopbackAddress(30);
  const polite = loopbackAddress(31);
  // a disconnect counts only while the backend demonstrably stays up: another session lives on
  const bystander = await P2PClient.connect(p.port, { localAddress: loopbackAddress(32) });
  clients.push(bystander);
  await bystander.handshake();

  /** Handshake from `from`, then close from `side`; resolves when the peer socket is closed. */
  const session = async (from: string, side: 'backend' | 'peer') => {
    const c = await P2PClient.connect(p.port, { localAddress: from });
    clients.push(c);
    await c.handshake();
    const s = await waitFor(() => p.proxy.sessions().find((x) => x.info.port === c.socket.localPort), 2000, 'the session');
    if (side === 'backend') await node.disconnectNode(`127.0.0.1:${s.info.backendLocalPort}`);
    else await c.close();
    assert.ok(await c.closedWithin(3000), 'the peer socket is closed');
    await waitFor(() => s.closed, 2000, 'the session to end');
    return s.closeReason;
  };

  // the peer closing itself never counts
  for (let i = 0; i < 3; i++) assert.equal(await session(polite, 'peer'), 'peer_closed');
  assert.equal(p.proxy.bans.find(polite), null, 'peer-initiated closes do not ban');

  assert.equal(await session(victim, 'backend'), 'backend_closed');
  assert.equal(await session(victim, 'backend'), 'backend_closed');
  assert.equal(p.proxy.bans.find(victim), null, 'two disconnects are below the count');
  assert.equal(await session(victim, 'backend'), 'backend_closed');
  const ban = await waitFor(() => p.proxy.bans.find(victim), 15_000, 'the third disconnect to ban the address (judged after a settle delay)');
  assert.equal(ban.subnet, `${victim}/32`);
  assert.ok(ban.until - Date.now() > 59 * 60_000 && ban.until - Date.now() <= 3600_000, 'banned for the configured hour');
  assert.equal(await p.metricValue('bhp_bans_added_total', { reason: 'backend_disconnects' }), 1);
  assert.ok(p.logs.some((l) => l.msg === 'banned' && l.ban === `${victim}/32`));

  const peersBefore = (await node.getPeerInfo()).length;
  const again = await P2PClient.connect(p.port, { localAddress: victim });
  clients.push(again);
  assert.ok(await again.closedWithin(1000), 'the banned address is refused');
  assert.equal(await p.metricValue('bhp_connections_refused_total', { reason: 'banned' }), 1);
  assert.equal((await node.getPeerInfo()).length, peersBefore, 'litecoind got no connection for it');
  assert.equal(p.proxy.bans.find(polite), null);
});
