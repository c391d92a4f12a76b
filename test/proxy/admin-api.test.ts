/**
 * The admin API answers every client mistake with the status that names it (400, 401, 404,
 * 405 with Allow, 413), never 500, validates every field of POST /bans before anything is
 * stored, and a stored huge `until` can never make GET /bans fail.
 *
 * Real implementations: the proxy itself (startProxy) with its admin listener, spoken to over
 * real HTTP connections (fetch, and a raw TCP socket for a chunked body that never ends); the
 * backend is a free port nobody listens on (no peer is relayed here, only the API is tried).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import * as net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { httpRequest, type HttpAnswer } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';
import { ADMIN_TOKEN, startTestProxy, type TestProxy } from '../support/proxy-harness.js';

/**
 * POST /bans with a chunked body (no Content-Length) of `bytes` bytes, or one that never ends
 * when `bytes` is Infinity. Resolves with the status line once it arrives, or when the server
 * closes the connection ('' when a write hit the closed socket before the answer was read), or
 * with 'still open' if the server has neither answered nor closed after 10 s.
 */
function chunkedPost(port: number, bytes: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    let sent = 0;
    s.on('connect', () => {
      s.write(`POST /bans HTTP/1.1\r\nhost: admin\r\nauthorization: Bearer ${ADMIN_TOKEN}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`);
      const chunk = Buffer.alloc(8192, 0x20);
      const pump = () => {
        if (s.destroyed || answer) return;
        s.write(`${chunk.length.toString(16)}\r\n`);
        s.write(chunk);
        s.write('\r\n');
        sent += chunk.length;
        if (sent < bytes) setTimeout(pump, 1);
        else s.write('0\r\n\r\n');
      };
      pump();
    });
    s.on('data', (c: Buffer) => {
      answer += c.toString('latin1');
      if (answer.includes('\r\n')) s.destroy(); // the status line is all we need
    });
    const giveUp = setTimeout(() => {
      s.destroy();
      resolve(answer.split('\r\n')[0] || 'still open');
    }, 10_000);
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(giveUp);
      resolve(answer.split('\r\n')[0]!);
    });
  });
}

test('admin API statuses over real HTTP: 400/401/404/405/413 for client errors, never 500; POST /bans validates every field', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-admin-api-'));
  const file = path.join(dir, 'bans.json');
  let proxy: TestProxy | undefined;
  t.after(async () => {
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  proxy = await startTestProxy(await freePort(), `bans: { file: "${file}" }`, { admin: true });
  const port = proxy.adminPort!;
  const answers: HttpAnswer[] = [];
  const call = async (method: string, p: string, options: Parameters<typeof httpRequest>[3] = { token: ADMIN_TOKEN }) => {
    const a = await httpRequest(port, method, p, options);
    answers.push(a);
    return a;
  };
  const post = (body: unknown) => call('POST', '/bans', { token: ADMIN_TOKEN, body });

  await t.test('Bearer scheme is case-insensitive; anything else is 401', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      assert.equal((await call('GET', '/bans', { headers: { authorization: `${scheme} ${ADMIN_TOKEN}` } })).status, 200, scheme);
    }
    for (const auth of [ADMIN_TOKEN, `Basic ${ADMIN_TOKEN}`, `Bearer`, `Bearer ${ADMIN_TOKEN}x`, `Bearer${ADMIN_TOKEN}`]) {
      const a = await call('GET', '/bans', { headers: { authorization: auth } });
      assert.equal(a.status, 401, auth);
      assert.equal(a.headers['www-authenticate'], 'Bearer');
    }
  });

  await t.test('405 with Allow for a known path and a wrong method; 404 for unknown paths', async () => {
    for (const [method, p, allow] of [
      ['PUT', '/bans', 'GET, POST'],
      ['DELETE', '/bans', 'GET, POST'],
      ['GET', '/bans/1.2.3.4', 'DELETE'],
      ['POST', '/peers', 'GET'],
      ['GET', '/reload', 'POST'],
    ] as const) {
      const a = await call(method, p);
      assert.equal(a.status, 405, `${method} ${p}`);
      assert.equal(a.headers.allow, allow, `${method} ${p} Allow`);
    }
    assert.equal((await call('GET', '/nothing-here')).status, 404);
    assert.equal((await call('DELETE', '/bans/10.9.9.9')).status, 404, 'no such ban');
  });

  await t.test('400 for bad JSON, a non-object body, bad escapes and every bad field; nothing is stored', async () => {
    const bad: [string, Parameters<typeof httpRequest>[3]][] = [
      ['bad JSON', { token: ADMIN_TOKEN, rawBody: '{"subnet": "10.0.0.1",', headers: { 'content-type': 'application/json' } }],
      ['JSON array', { token: ADMIN_TOKEN, body: ['10.0.0.1'] }],
      ['JSON string', { token: ADMIN_TOKEN, body: '10.0.0.1' }],
      ['no body (subnet is required)', { token: ADMIN_TOKEN }],
    ];
    for (const [what, options] of bad) assert.equal((await call('POST', '/bans', options)).status, 400, what);
    const fields: [string, unknown][] = [
      ['duration 1e300', { subnet: '10.0.0.1', duration: 1e300 }],
      ['duration Infinity as string', { subnet: '10.0.0.1', duration: 'Infinity' }],
      ['duration negative', { subnet: '10.0.0.1', duration: -5 }],
      ['duration zero', { subnet: '10.0.0.1', duration: 0 }],
      ['duration 11 years', { subnet: '10.0.0.1', duration: `${11 * 365}d` }],
      ['duration not a duration', { subnet: '10.0.0.1', duration: 'forever' }],
      ['duration an object', { subnet: '10.0.0.1', duration: { h: 1 } }],
      ['subnet missing', { duration: '1h' }],
      ['subnet a number', { subnet: 12345 }],
      ['subnet a bare integer string', { subnet: '12345' }],
      ['subnet a short IPv4 form', { subnet: '10.1' }],
      ['subnet with hex bits', { subnet: '10.0.0.0/0x10' }],
      ['subnet not an address', { subnet: 'not-an-address' }],
      ['subnet and address both', { subnet: '10.0.0.1', address: '10.0.0.2' }],
      ['reason too long', { subnet: '10.0.0.1', reason: 'x'.repeat(257) }],
      ['reason not a string', { subnet: '10.0.0.1', reason: 42 }],
      ['unknown field', { subnet: '10.0.0.1', durration: '1h' }],
    ];
    for (const [what, body] of fields) {
      const a = await post(body);
      assert.equal(a.status, 400, what);
      assert.equal(typeof a.json?.error, 'string', `${what}: an error message`);
    }
    assert.match((await post({ subnet: '10.0.0.1', duration: 1e300 })).json.error, /duration/);
    assert.equal((await call('DELETE', '/bans/%ZZ')).status, 400, 'bad percent-escape');
    assert.equal((await call('DELETE', `/bans/${encodeURIComponent('12345')}`)).status, 400, 'a bare integer is not a subnet');
    const list = await call('GET', '/bans');
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.bans, [], 'none of the refused requests stored a ban');
    assert.equal(proxy!.proxy.bans.size, 0);
    assert.ok(!existsSync(file) || JSON.parse(readFileSync(file, 'utf8')).bans.length === 0, 'nothing written either');
  });

  await t.test('413 for a large body, by Content-Length and by a chunked body that never ends; the API keeps serving', async () => {
    const big = await call('POST', '/bans', { token: ADMIN_TOKEN, rawBody: JSON.stringify({ subnet: '10.0.0.1', reason: 'x'.repeat(100_000) }), headers: { 'content-type': 'application/json' } });
    assert.equal(big.status, 413);
    assert.match(await chunkedPost(port, 200_000), /^HTTP\/1\.1 413 /, 'a chunked body past the limit');
    // one that never ends is cut off (the promise resolves only when the server closes)
    assert.match(await chunkedPost(port, Infinity), /^(HTTP\/1\.1 413 .*)?$/);
    assert.equal((await call('GET', '/bans')).status, 200, 'still serving');
    assert.equal(proxy!.proxy.bans.size, 0);
  });

  await t.test('a valid ban is 201 (after it is saved), its removal 200; the largest duration is accepted', async () => {
    const added = await post({ subnet: '10.1.2.0/24', duration: '3650d', reason: 'ten years' });
    assert.equal(added.status, 201);
    assert.equal(added.json.ban.subnet, '10.1.2.0/24');
    assert.equal(typeof added.json.ban.until, 'string');
    assert.ok(Date.parse(added.json.ban.until) > Date.now() + 3649 * 86_400_000);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).bans.map((b: { subnet: string }) => b.subnet), ['10.1.2.0/24'], 'on disk when acknowledged');
    assert.equal((await post({ address: '10.7.7.7', duration: 60, reason: 'seconds' })).status, 201);
    assert.equal((await call('DELETE', `/bans/${encodeURIComponent('10.1.2.0/24')}`)).status, 200);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).bans.map((b: { subnet: string }) => b.subnet), ['10.7.7.7/32'], 'the removal is on disk when acknowledged');
  });

  await t.test('a huge until (from a hook, or the largest a Date can hold in the file) never makes GET /bans fail', async () => {
    // what a hook result or misbehaviour can ask for: the proxy clamps it instead of storing 1e300
    assert.ok(proxy!.proxy.ban('10.2.0.1', 1e300, 'hook asked for forever', 'hook'));
    assert.equal(proxy!.proxy.ban('10.2.0.2', Number.NaN, 'not a duration', 'hook'), null);
    const list = await call('GET', '/bans');
    assert.equal(list.status, 200);
    const huge = list.json.bans.find((b: { subnet: string }) => b.subnet === '10.2.0.1/32');
    assert.ok(huge && Number.isFinite(Date.parse(huge.until)), `an ISO until: ${JSON.stringify(huge)}`);
    // and what GET /bans printed loads back after a restart
    await proxy!.close();
    proxy = await startTestProxy(await freePort(), `bans: { file: "${file}" }`, { admin: true });
    const again = await httpRequest(proxy.adminPort!, 'GET', '/bans', { token: ADMIN_TOKEN });
    assert.equal(again.status, 200);
    assert.deepEqual(again.json.bans.map((b: { subnet: string }) => b.subnet).sort(), ['10.2.0.1/32', '10.7.7.7/32']);
  });

  assert.deepEqual(answers.filter((a) => a.status >= 500).map((a) => `${a.status} ${a.text}`), [], 'no 5xx for any client error');
});

test('a ban file holding an until of 1e300 or a far-future ISO date loads without breaking GET /bans', { timeout: 20_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-admin-huge-'));
  const file = path.join(dir, 'bans.json');
  let proxy: TestProxy | undefined;
  t.after(async () => {
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(
    file,
    JSON.stringify({
      version: 1,
      bans: [
        { subnet: '10.3.0.1/32', until: 1e300, reason: 'what the old proxy stored for duration 1e300', created: Date.now() },
        { subnet: '10.3.0.2/32', until: 8.64e15, reason: 'the last millisecond a Date holds', created: Date.now() },
        { subnet: '10.3.0.3/32', until: '+275760-09-13T00:00:00.000Z', reason: 'the same as ISO', created: new Date().toISOString() },
      ],
    }),
  );
  proxy = await startTestProxy(await freePort(), `bans: { file: "${file}" }`, { admin: true });
  const list = await httpRequest(proxy.adminPort!, 'GET', '/bans', { token: ADMIN_TOKEN });
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.bans.map((b: { subnet: string }) => b.subnet).sort(), ['10.3.0.2/32', '10.3.0.3/32']);
  for (const b of list.json.bans) assert.equal(b.until, '+275760-09-13T00:00:00.000Z');
  assert.ok(readFileSync(`${file}.rejected`, 'utf8').includes('10.3.0.1/32'), 'the unreadable one is kept in the side file');
});

test('an admin token of whitespace is refused at start', { timeout: 20_000 }, async () => {
  const adminPort = await freePort();
  await assert.rejects(startTestProxy(await freePort(), `admin: { listen: "127.0.0.1:${adminPort}", token: "${' '.repeat(20)}" }`), /admin\.token \(line \d+\): only whitespace/);
});

test('an admin API on a non-loopback address is logged as a warning', { timeout: 20_000 }, async (t) => {
  const adminPort = await freePort();
  const proxy = await startTestProxy(await freePort(), `admin: { listen: "0.0.0.0:${adminPort}", token: "${ADMIN_TOKEN}" }`);
  t.after(() => proxy.close());
  const warning = proxy.logs.find((l) => l.msg.startsWith('WARNING: ') && /admin/.test(l.msg));
  assert.ok(warning, 'warned');
  assert.equal(warning.level, 40);
  assert.equal(warning.listen, `0.0.0.0:${adminPort}`);
  assert.equal((await httpRequest(adminPort, 'GET', '/health')).status, 200);
  const local = await startTestProxy(await freePort(), '', { admin: true });
  t.after(() => local.close());
  assert.equal(local.logs.filter((l) => l.msg.startsWith('WARNING: ')).length, 0, 'no warning on loopback');
});
