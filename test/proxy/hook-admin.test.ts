/**
 * Hook admin routes on the admin API (`/hooks/<name>/<route>`), over real HTTP to the proxy's
 * admin listener (node's http server; fetch as the client). The hook is a fixture written like a
 * third-party module; no P2P peer is needed (the backend is a port nothing listens on, probing off).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkModule, HookLoadError } from '../../src/hooks/loader.js';
import { HOOK_API_VERSION } from '../../src/hooks/index.js';
import { httpRequest } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';
import { startTestProxy } from '../support/proxy-harness.js';

const fixture = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../hooks/fixtures/admin.js');

test('routes of two instances of a hook, validated input, hook errors, 404/405, token required', { timeout: 30_000 }, async (t) => {
  const yaml = `hooks:\n  - { module: ${JSON.stringify(fixture)} }\n  - { module: ${JSON.stringify(fixture)} }`;
  const proxy = await startTestProxy(await freePort(), yaml, { admin: true, probeBackend: false });
  t.after(() => proxy.close());
  const call = (method: string, p: string, body?: unknown, raw?: string) =>
    httpRequest(proxy.adminPort!, method, p, { token: proxy.adminToken, ...(body !== undefined ? { body } : {}), ...(raw !== undefined ? { rawBody: raw } : {}) });

  assert.equal((await httpRequest(proxy.adminPort!, 'GET', '/hooks/notes/notes')).status, 401);
  const added = await call('POST', '/hooks/notes/notes', { text: 'alpha' });
  assert.deepEqual([added.status, added.json], [200, { added: 'alpha', hook: 'notes' }]);
  assert.equal((await call('POST', '/hooks/notes/notes', { text: 'alpha' })).status, 409, 'HookAdminError status');
  await call('POST', '/hooks/notes/notes', { text: 'beta' });
  const listed = await call('GET', '/hooks/notes/notes?prefix=b');
  assert.deepEqual(listed.json, { notes: ['beta'], count: '2' }, 'query parameters in; bigint out as a decimal string');
  // the second instance is `notes#2`, with its own state
  const second = await call('POST', '/hooks/notes%232/notes', { text: 'gamma' });
  assert.deepEqual(second.json, { added: 'gamma', hook: 'notes#2' });
  assert.deepEqual((await call('GET', '/hooks/notes%232/notes')).json.notes, ['gamma']);

  const bad = await call('POST', '/hooks/notes/notes', { text: '', extra: 1 });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error, /text: .*; .*extra/);
  assert.equal((await call('POST', '/hooks/notes/notes', undefined, '[1,2]')).status, 400, 'a body must be a JSON object');
  assert.equal((await call('POST', '/hooks/notes/notes', undefined, 'x'.repeat(70_000))).status, 413);
  const failed = await call('POST', '/hooks/notes/fail', {});
  assert.deepEqual([failed.status, failed.json], [500, { error: 'internal error' }]);
  assert.ok(proxy.logs.some((l) => /secret detail/.test(String(l.err))), 'the failure is logged, not sent');
  assert.deepEqual([(await call('GET', '/hooks/notes/teapot')).status], [418]);
  const wrong = await call('PUT', '/hooks/notes/notes', {});
  assert.deepEqual([wrong.status, wrong.headers.allow], [405, 'GET, POST, DELETE']);
  assert.equal((await call('GET', '/hooks/notes/nothing')).status, 404);
  assert.equal((await call('GET', '/hooks/nobody/notes')).status, 404);
  assert.equal((await call('GET', '/hooks/notes')).status, 404);
  assert.equal((await call('DELETE', '/hooks/notes/notes')).status, 200);
  assert.deepEqual((await call('GET', '/hooks/notes/notes')).json.notes, []);
  const hooks = await call('GET', '/hooks');
  assert.deepEqual(hooks.json.hooks[0].admin, ['GET notes', 'POST notes', 'DELETE notes', 'POST fail', 'GET teapot']);
  assert.equal((await call('GET', '/peers')).status, 200, 'the proxy still serves its own routes');
});

test('a module with a malformed admin table refuses to load, naming the route', () => {
  const base = { apiVersion: HOOK_API_VERSION, name: 'bad' };
  for (const [admin, why] of [
    [{ 'FETCH x': () => 1 }, /"FETCH x" is not "METHOD route"/],
    [{ 'GET Upper': () => 1 }, /"GET Upper"/],
    [{ 'GET x': 42 }, /must be a handler function/],
    [{ 'POST x': { handler: () => 1, input: {} } }, /must be a handler function or \{ input\?: schema, handler \}/],
    ['routes', /admin must be an object/],
  ] as const) {
    assert.throws(() => checkModule('bad.js', { ...base, admin }), (e: unknown) => e instanceof HookLoadError && why.test((e as Error).message));
  }
  assert.doesNotThrow(() => checkModule('ok.js', { ...base, admin: { 'GET x': () => 1, 'POST y-z_1': { handler: () => 1 } } }));
});
