/**
 * The ban file: what the reader accepts (what the proxy writes and what GET /bans prints),
 * what it refuses (logged by name and kept in FILE.rejected, never dropped), and a ban file
 * that cannot be written (refused at start with one line; a later outage is logged once,
 * counted, retried, answered 503 by the admin API, and the ban still holds).
 *
 * Real implementations: the proxy itself (startProxy) with its admin API over real HTTP and
 * real peer connections from 127.0.0.0/8 addresses to check a ban holds; the backend is a
 * plain net server (the ban decision is taken at accept, before any P2P byte). Unwritable
 * paths are real failures of the file system: a path under a regular file (ENOTDIR, works
 * as root), a read-only tmpfs mount (EROFS, needs CAP_SYS_ADMIN: skipped without it), and a
 * 0555 directory (EACCES, only meaningful when not root: skipped as root).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BanFileError } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { startProxy } from '../../src/app.js';
import { checkBanFileWritable, parseBanSubnet } from '../../src/proxy/ban-list.js';
import { P2PClient, httpRequest } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';
import { ADMIN_TOKEN, startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { waitFor } from '../support/wait.js';

const HOUR = 3600_000;

async function holdingBackend(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function sideLines(file: string): { problem: string; entry: unknown }[] {
  if (!existsSync(`${file}.rejected`)) return [];
  return readFileSync(`${file}.rejected`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { problem: string; entry: unknown });
}

/** Can this process mount a tmpfs (root with CAP_SYS_ADMIN)? */
function canMount(): boolean {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const mountSkip = canMount() ? false : 'cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)';
const isRoot = process.getuid?.() === 0;

test('subnet parsing refuses bare integers and the short IPv4 forms ipaddr.js would accept', () => {
  for (const bad of ['12345', '0', '4294967295', '10.1', '10.1.2', '0x7f000001', '0x7f.0.0.1', '010.0.0.1', '10.0.0.0/0x10', '10.0.0.0/+8', '10.0.0.0/', '']) {
    assert.equal(parseBanSubnet(bad), null, JSON.stringify(bad));
  }
  assert.equal(parseBanSubnet('10.0.0.1')?.text, '10.0.0.1/32');
  assert.equal(parseBanSubnet(' 10.0.0.77/24 ')?.text, '10.0.0.0/24');
  assert.equal(parseBanSubnet('::ffff:10.0.0.1')?.text, '10.0.0.1/32');
  assert.equal(parseBanSubnet('2001:db8::1/64')?.text, '2001:db8::/64');
});

test('the reader loads what the proxy writes and what GET /bans prints; unreadable entries are logged and kept in FILE.rejected, across saves and restarts', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-ban-file-'));
  const file = path.join(dir, 'bans.json');
  const backend = await holdingBackend();
  let proxy: TestProxy | undefined;
  t.after(async () => {
    await proxy?.close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const now = Date.now();
  const later = now + HOUR;
  const good = [
    { subnet: '10.0.0.1/32', until: later, reason: 'as the proxy writes', created: now },
    { subnet: '10.0.0.2/32', until: new Date(later).toISOString(), reason: 'as GET /bans prints', created: new Date(now).toISOString() },
    { subnet: '10.0.0.3/32', until: String(later), reason: 'numeric string', created: String(now) },
    { address: '10.0.0.4', until: later },
    { subnet: '10.0.1.0/24', until: later, reason: null },
  ];
  const bad = [
    null,
    'not an object',
    { subnet: '12345', until: later, reason: 'bare integer: not 0.0.48.57' },
    { subnet: 'not-an-address', until: later },
    { subnet: '10.0.0.9', until: 'soon' },
    { subnet: '10.0.0.10', until: 1e300 },
    { subnet: '10.0.0.11', until: later, created: 'yesterday' },
    { subnet: '10.0.0.12', until: later, reason: { nested: true } },
    { until: later },
  ];
  const expired = { subnet: '10.0.0.99/32', until: now - 1000, reason: 'ended', created: now - HOUR };
  writeFileSync(file, JSON.stringify({ version: 1, bans: [...good, ...bad, expired] }));

  proxy = await startTestProxy(backend.port, `bans: { file: "${file}" }`, { admin: true });
  const loaded = proxy.proxy.bans.list();
  assert.deepEqual(loaded.map((b) => b.subnet).sort(), ['10.0.0.1/32', '10.0.0.2/32', '10.0.0.3/32', '10.0.0.4/32', '10.0.1.0/24']);
  for (const b of loaded) assert.equal(b.until, later, `${b.subnet}: until read as ms`);
  assert.equal(loaded.find((b) => b.subnet === '10.0.0.2/32')?.created, now, 'ISO created read');
  assert.equal(proxy.proxy.bans.find('0.0.48.57'), null, '12345 is not read as 0.0.48.57');

  const warnings = proxy.logs.filter((l) => l.msg === 'ban file entry not loaded; kept in the side file');
  assert.equal(warnings.length, bad.length, 'one warning per unreadable entry');
  for (const b of bad) assert.ok(warnings.some((w) => w.entry === JSON.stringify(b)), `a warning names ${JSON.stringify(b)}`);
  assert.ok(warnings.every((w) => w.level === 40 && typeof w.problem === 'string' && w.keptIn === `${file}.rejected`));
  assert.deepEqual(sideLines(file).map((l) => l.entry), bad, 'every unreadable entry is in the side file, as it was');

  // a save rewrites the main file; the side file still holds them
  assert.equal((await httpRequest(proxy.adminPort!, 'POST', '/bans', { token: ADMIN_TOKEN, body: { subnet: '10.0.2.1', duration: '1h' } })).status, 201);
  const saved = JSON.parse(readFileSync(file, 'utf8')) as { bans: { subnet: string }[] };
  assert.equal(saved.bans.length, 6);
  assert.deepEqual(sideLines(file).map((l) => l.entry), bad);

  // GET /bans output used as a ban file loads back the same bans
  const printed = (await httpRequest(proxy.adminPort!, 'GET', '/bans', { token: ADMIN_TOKEN })).json as { bans: { subnet: string; until: string }[] };
  assert.equal(typeof printed.bans[0]?.until, 'string');
  await proxy.close();
  proxy = undefined;
  writeFileSync(file, JSON.stringify(printed));
  proxy = await startTestProxy(backend.port, `bans: { file: "${file}" }`, { admin: true });
  assert.deepEqual(
    proxy.proxy.bans.list().map((b) => [b.subnet, new Date(b.until).toISOString()]).sort(),
    printed.bans.map((b) => [b.subnet, b.until]).sort(),
  );
  assert.equal(sideLines(file).length, bad.length);

  // killed after keeping the rejected entries but before a save: they are read again, not kept twice
  await proxy.close();
  proxy = undefined;
  writeFileSync(file, JSON.stringify({ version: 1, bans: [...good, ...bad] }));
  proxy = await startTestProxy(backend.port, `bans: { file: "${file}" }`, { admin: true });
  assert.equal(proxy.proxy.bans.size, good.length);
  assert.deepEqual(sideLines(file).map((l) => l.entry), bad, 'the same rejected entries are not added twice');
});

test('a ban file of an unknown format or torn JSON refuses the start (bans are never dropped)', { timeout: 20_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-ban-format-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'bans.json');
  for (const [text, message] of [
    ['{"version": 2, "bans": []}', /unknown format/],
    ['[{"subnet": "10.0.0.1"}]', /unknown format/],
    ['{"version": 1, "bans": [', /not valid JSON/],
  ] as const) {
    writeFileSync(file, text);
    await assert.rejects(startTestProxy(await freePort(), `bans: { file: "${file}" }`), message);
    assert.equal(readFileSync(file, 'utf8'), text, 'the file is left as it was');
  }
});

/** Each way to make a directory unwritable that this machine allows. */
interface Unwritable {
  name: string;
  skip: string | false;
  /** a directory that is writable now */
  setUp(base: string): string;
  /** make it unwritable; the error code writes will get */
  breakIt(dir: string): string;
  repair(dir: string): void;
  tearDown(dir: string): void;
}

const ways: Unwritable[] = [
  {
    name: 'a path whose parent is a regular file (ENOTDIR)',
    skip: false,
    setUp: (base) => path.join(base, 'parent', 'bans'),
    breakIt(dir) {
      rmSync(path.dirname(dir), { recursive: true, force: true });
      writeFileSync(path.dirname(dir), 'a regular file where a directory should be\n');
      return 'ENOTDIR';
    },
    repair(dir) {
      rmSync(path.dirname(dir), { force: true });
      mkdirSync(dir, { recursive: true });
    },
    tearDown() {},
  },
  {
    name: 'a read-only file system (EROFS, tmpfs remounted ro)',
    skip: mountSkip,
    setUp(base) {
      const dir = path.join(base, 'mnt');
      mkdirSync(dir);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir]);
      return dir;
    },
    breakIt(dir) {
      execFileSync('mount', ['-o', 'remount,ro', dir]);
      return 'EROFS';
    },
    repair(dir) {
      execFileSync('mount', ['-o', 'remount,rw', dir]);
    },
    tearDown(dir) {
      try {
        execFileSync('umount', [dir], { stdio: 'ignore' });
      } catch {
        /* not mounted */
      }
    },
  },
  {
    name: 'a 0555 directory (EACCES)',
    skip: isRoot ? 'root ignores permission bits' : false,
    setUp: (base) => path.join(base, 'ro'),
    breakIt(dir) {
      chmodSync(dir, 0o555);
      return 'EACCES';
    },
    repair(dir) {
      chmodSync(dir, 0o755);
    },
    tearDown(dir) {
      if (existsSync(dir)) chmodSync(dir, 0o755);
    },
  },
];

for (const way of ways) {
  test(`unwritable ban file, ${way.name}: refused at start with one line naming bans.file and the reason`, { skip: way.skip, timeout: 20_000 }, async (t) => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'bhp-ban-ro-'));
    const dir = way.setUp(base);
    t.after(() => {
      way.tearDown(dir);
      rmSync(base, { recursive: true, force: true });
    });
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'bans.json');
    assert.equal(await checkBanFileWritable(file), null, 'writable before');
    const code = way.breakIt(dir);
    const problem = await checkBanFileWritable(file);
    assert.ok(problem, 'the checker finds it');
    assert.equal(problem.split('\n').length, 1, 'one line');
    assert.ok(problem.startsWith(`bans.file ${file} is not writable: `), problem);
    assert.ok(problem.startsWith(`bans.file ${file} is not writable: ${code}`), problem);
    const config = parseConfig(['network: regtest', `listen: "127.0.0.1:${await freePort()}"`, `backend: "127.0.0.1:${await freePort()}"`, 'metrics: false', `bans: { file: "${file}" }`].join('\n'), 'test.yaml');
    const err = await startProxy(config, { defaultMetrics: false }).then(
      () => assert.fail('started with an unwritable ban file'),
      (e: Error) => e,
    );
    assert.ok(err instanceof BanFileError, `a BanFileError, got ${err.name}: ${err.message}`);
    assert.ok(err.message.startsWith(`bans.file ${file} is not writable: ${code}`), err.message);
    assert.equal(err.message.split('\n').length, 1);
    way.repair(dir);
    assert.equal(await checkBanFileWritable(file), null, 'writable again');
    assert.equal(existsSync(file), false, 'the checker never creates the ban file itself');
  });

  test(`unwritable ban file, ${way.name}, during a run: the ban holds, the API answers 503, logged once, counted, retried, and saved once writable`, { skip: way.skip, timeout: 30_000 }, async (t) => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'bhp-ban-outage-'));
    const dir = way.setUp(base);
    const backend = await holdingBackend();
    let proxy: TestProxy | undefined;
    const sockets: net.Socket[] = [];
    t.after(async () => {
      for (const s of sockets) s.destroy();
      await proxy?.close();
      await backend.close();
      way.tearDown(dir);
      rmSync(base, { recursive: true, force: true });
    });
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'bans.json');
    proxy = await startTestProxy(backend.port, `bans: { file: "${file}" }`, { admin: true, metrics: true });
    const admin = (method: string, p: string, body?: unknown) => httpRequest(proxy!.adminPort!, method, p, { token: ADMIN_TOKEN, body });
    assert.equal((await admin('POST', '/bans', { subnet: '127.0.3.1', duration: '1h' })).status, 201);

    const code = way.breakIt(dir);
    const during = await admin('POST', '/bans', { subnet: '127.0.3.2', duration: '1h', reason: 'during the outage' });
    assert.equal(during.status, 503);
    assert.match(during.json.error, new RegExp(code));
    assert.equal(during.json.ban.subnet, '127.0.3.2/32');
    const peer = await P2PClient.connect(proxy.port, { localAddress: '127.0.3.2' });
    sockets.push(peer.socket);
    peer.socket.on('error', () => {});
    assert.ok(await peer.closedWithin(2000), 'the unsaved ban is enforced in memory');
    // more failures: bans from the proxy itself (hook/misbehaviour path) and another admin one
    proxy.proxy.ban('127.0.3.3', HOUR, 'hook during the outage', 'hook');
    assert.equal((await admin('DELETE', `/bans/${encodeURIComponent('127.0.3.1')}`)).status, 503, 'an unban that could not be saved');
    assert.equal((await admin('POST', '/bans', { subnet: '127.0.3.4', duration: '1h' })).status, 503);
    const failures = await proxy.metricValue('bhp_ban_write_failures_total');
    assert.ok(failures >= 3, `failed writes are counted (${failures})`);
    const errors = proxy.logs.filter((l) => l.msg.startsWith('cannot write the ban file'));
    assert.equal(errors.length, 1, 'logged once per outage');
    assert.equal(errors[0]!.code, code);
    assert.equal(errors[0]!.file, file);
    assert.equal((await httpRequest(proxy.metricsPort!, 'GET', '/metrics')).status, 200, 'the process is alive and serving');

    way.repair(dir);
    // the retry (backoff from 1 s) saves everything without another request
    // the log line follows the fsync of the directory (the file itself appears at the rename, a moment earlier)
    await waitFor(() => proxy!.logs.some((l) => l.msg === 'ban file written again'), 20_000, 'the retry to save the bans made during the outage');
    const onDisk = (JSON.parse(readFileSync(file, 'utf8')) as { bans: { subnet: string }[] }).bans.map((b) => b.subnet).sort();
    assert.deepEqual(onDisk, ['127.0.3.2/32', '127.0.3.3/32', '127.0.3.4/32']);
    assert.equal((await admin('POST', '/bans', { subnet: '127.0.3.5', duration: '1h' })).status, 201, 'acknowledged again once writable');
    assert.equal(proxy.logs.filter((l) => l.msg.startsWith('cannot write the ban file')).length, 1);
  });
}
