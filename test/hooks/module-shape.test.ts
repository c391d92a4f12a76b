/**
 * The loader's checks on a module before it joins the chain: unknown keys on the default export
 * are refused with a "did you mean", every shipped hook passes, and import() has a deadline.
 *
 * Real implementations: src/hooks/loader.ts (checkModule, loadHookChain with real dynamic
 * import() of module files written to a temp dir) and the shipped hooks' compiled modules. No
 * sockets: loading happens before any peer.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NETWORKS } from '../../src/codec/index.js';
import { HOOK_API_VERSION, HookLoadError } from '../../src/hooks/index.js';
import { checkModule, closest, loadHookChain, silentHookServices } from '../../src/hooks/loader.js';

const HOOKS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../hooks');
const base = { apiVersion: HOOK_API_VERSION, name: 'shape' };

function refusal(mod: object): string {
  try {
    checkModule('./shape.js', mod);
  } catch (err) {
    assert.ok(err instanceof HookLoadError, String(err));
    return err.message;
  }
  assert.fail('loaded');
}

test('an unknown key on the default export refuses the load, with the nearest known key', () => {
  assert.equal(refusal({ ...base, onMesage() {} }), 'hook module ./shape.js: hook "shape": the default export has unknown key onMesage (did you mean onMessage?)');
  assert.match(refusal({ ...base, OnConnect() {} }), /unknown key OnConnect \(did you mean onConnect\?\)/);
  assert.match(refusal({ ...base, want: { inbound: ['ping'] } }), /unknown key want \(did you mean wants\?\)/);
  assert.match(refusal({ ...base, onDisconect() {} }), /unknown key onDisconect \(did you mean onDisconnect\?\)/);
  const far = refusal({ ...base, handle() {} });
  assert.match(far, /unknown key handle \(known: apiVersion, name, wants, options, init, onAccept, onConnect, onMessage, onDisconnect, commands, features, close, admin\)/);
  // every known key is accepted
  checkModule('./shape.js', { ...base, wants: {}, options: { safeParse: () => ({ success: true, data: {} }) }, init() {}, onConnect() {}, onMessage() {}, onDisconnect() {}, commands: {}, features: () => [], close() {} });
});

test('closest: case-insensitive edit distance of at most 2, else nothing', () => {
  assert.equal(closest('onmessage', ['onMessage', 'onConnect']), 'onMessage');
  assert.equal(closest('clsoe', ['close', 'init']), 'close');
  assert.equal(closest('teardown', ['close', 'init']), undefined);
});

test('every shipped hook passes the shape check', async () => {
  const files = readdirSync(HOOKS_DIR).filter((f) => f.endsWith('.js'));
  assert.ok(files.length >= 6, `shipped hooks found: ${files.join(', ')}`);
  for (const f of files) {
    const mod = (await import(pathToFileURL(path.join(HOOKS_DIR, f)).href)) as { default: unknown };
    assert.doesNotThrow(() => checkModule(f, mod.default), f);
  }
});

test('import() has a deadline: a top-level await that never settles, or waits on a long timer, fails the load', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-shape-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const load = (module: string) =>
    loadHookChain([{ module, options: {} }], {
      baseDir: dir,
      settings: { network: NETWORKS.regtest, maxMessageSize: 4_000_000, timeoutMs: 1000 },
      host: { peers: () => [], send: () => false, disconnect() {}, misbehave() {}, setPriority: () => false },
      loadTimeoutMs: 300,
      ...silentHookServices,
    });
  writeFileSync(path.join(dir, 'never.mjs'), `await new Promise(() => {});\nexport default { apiVersion: '${HOOK_API_VERSION}', name: 'never' };\n`);
  writeFileSync(path.join(dir, 'slow.mjs'), `await new Promise((r) => setTimeout(r, 1e9).unref());\nexport default { apiVersion: '${HOOK_API_VERSION}', name: 'slow' };\n`);
  writeFileSync(path.join(dir, 'quick.mjs'), `await new Promise((r) => setTimeout(r, 10));\nexport default { apiVersion: '${HOOK_API_VERSION}', name: 'quick' };\n`);
  await assert.rejects(load('./never.mjs'), { name: 'HookLoadError', message: 'hook module ./never.mjs: import did not finish within 300 ms (a top-level await that never settles?)' });
  await assert.rejects(load('./slow.mjs'), { name: 'HookLoadError', message: /^hook module \.\/slow\.mjs: import did not finish within 300 ms/ });
  const chain = await load('./quick.mjs');
  assert.deepEqual(chain.hooks.map((h) => h.name), ['quick'], 'a top-level await that settles in time loads');
  await chain.close();
});

test('a relative file path written without ./ is read as a package name: the refusal says how to write the path', async (t) => {
  // the real loader and file system: the file is there, but `hooks/x.js` names a package
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-shape-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'my-hooks'));
  writeFileSync(path.join(dir, 'my-hooks', 'mine.js'), `export default { apiVersion: '${HOOK_API_VERSION}', name: 'mine' };\n`);
  const load = (module: string) =>
    loadHookChain([{ module, options: {} }], {
      baseDir: dir,
      settings: { network: NETWORKS.regtest, maxMessageSize: 4_000_000, timeoutMs: 1000 },
      host: { peers: () => [], send: () => false, disconnect() {}, misbehave() {}, setPriority: () => false },
      ...silentHookServices,
    });
  await assert.rejects(load('my-hooks/mine.js'), (err: Error) => err instanceof HookLoadError && err.message.includes('./my-hooks/mine.js') && /start with \.\/ or \//.test(err.message));
  // a package that is not installed keeps the plain message
  await assert.rejects(load('no-such-hook-package'), { name: 'HookLoadError', message: `hook module no-such-hook-package: cannot find package "no-such-hook-package" from ${dir}` });
  const chain = await load('./my-hooks/mine.js');
  assert.deepEqual(chain.hooks.map((h) => h.name), ['mine']);
  await chain.close();

  // a TypeScript source: Node 20 and 22 cannot import it, and the refusal says what to list instead
  writeFileSync(path.join(dir, 'my-hooks', 'typed.ts'), `const name: string = 'typed';\nexport default { apiVersion: '${HOOK_API_VERSION}', name };\n`);
  const typed = await load('./my-hooks/typed.ts').then(
    async (c) => {
      await c.close();
      return 'loaded'; // Node 24 strips the types itself
    },
    (err: Error) => err,
  );
  if (typed instanceof Error) assert.match(typed.message, /Unknown file extension.*compile it with tsc and list the \.js file/s);
});
