/**
 * `workers: 2`: what the one /metrics endpoint of the primary says when the trouble is the
 * primary's own (a refused reload, a ban file it cannot write) or a worker that is starting.
 *
 * Real implementations: litecoind (Bitcoin Core 0.21's P2P code) behind the proxy, the built CLI
 * as one primary and two node:cluster workers, prom-client's text format read as Prometheus
 * reads it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { HOOK_API_VERSION } from '../../src/hooks/api.js';
import { cleanupStack } from '../support/cleanup.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { httpRequest } from '../support/p2p-client.js';
import { startProxyProcess, type ProxyProcess } from '../support/proxy-process.js';
import { waitFor } from '../support/wait.js';

const skip = litecoindSkipReason();
let node: Litecoind;

before(async () => {
  if (skip) return;
  node = await startLitecoind({ name: 'workers-metrics', disableWallet: true });
});
after(async () => {
  await node?.stop();
});

const metric = (text: string, name: string): number | null => {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
};

async function workersProxy(t: Parameters<typeof cleanupStack>[0], yaml = ''): Promise<ProxyProcess> {
  const steps = cleanupStack(t);
  const proxy = await startProxyProcess(node.p2pPort, `workers: 2\n${yaml}`);
  steps.push(() => proxy.stop());
  return proxy;
}

test('a refused SIGHUP reload sets bhp_config_reload_success to 0 with workers', { skip, timeout: 90_000 }, async (t) => {
  const proxy = await workersProxy(t);
  const first = (await httpRequest(proxy.metricsPort, 'GET', '/metrics')).text;
  assert.equal(metric(first, 'bhp_config_reload_success'), 1);
  assert.match(first, /^bhp_build_info\{[^}]*\} 1$/m, 'always 1, however many processes report it');
  const file = path.join(proxy.dir, 'proxy.yaml');
  const good = readFileSync(file, 'utf8');
  writeFileSync(file, `${good}\nlimits: [this is not a mapping\n`);
  process.kill(proxy.proc.pid!, 'SIGHUP');
  await waitFor(() => proxy.output().includes('reload refused'), 20_000, 'the primary to refuse the reload');
  const text = (await httpRequest(proxy.metricsPort, 'GET', '/metrics')).text;
  assert.equal(metric(text, 'bhp_config_reload_success'), 0, 'the refused reload shows in the metric operators alert on');
  writeFileSync(file, good);
});

test('a failed write of the ban file is counted in bhp_ban_write_failures_total with workers', { skip, timeout: 90_000 }, async (t) => {
  const proxy = await workersProxy(t);
  // the primary owns the file: a directory where it must go makes every rename over it fail
  const banFile = path.join(proxy.dir, 'bans.json');
  rmSync(banFile, { force: true });
  mkdirSync(banFile);
  const r = await proxy.admin('POST', '/bans', { subnet: '127.0.6.1', duration: '1h', reason: 'disk test' });
  assert.equal(r.status, 503, r.text);
  const text = (await httpRequest(proxy.metricsPort, 'GET', '/metrics')).text;
  assert.ok((metric(text, 'bhp_ban_write_failures_total') ?? 0) >= 1, `the failed write is counted: ${/^bhp_ban_write_failures_total.*$/m.exec(text)?.[0]}`);
  assert.equal(metric(text, 'bhp_bans_added_total\\{reason="admin"\\}'), 1, 'the admin ban is counted once');
  rmSync(banFile, { recursive: true, force: true });
});

test('/metrics answers while a worker is starting (a replacement loading its hooks)', { skip, timeout: 120_000 }, async (t) => {
  // every worker takes 4 s in its hook's init, as a hook that opens a database might
  const hook = path.join(node.datadir, 'slow-init-hook.mjs');
  writeFileSync(hook, `export default { apiVersion: ${JSON.stringify(HOOK_API_VERSION)}, name: "slow-init", init: () => new Promise((r) => setTimeout(r, 4000)) };\n`);
  const proxy = await workersProxy(t, `hooks:\n  - module: ${JSON.stringify(hook)}\n`);
  assert.equal((await httpRequest(proxy.metricsPort, 'GET', '/metrics')).status, 200);
  const pids = [...proxy.output().matchAll(/"pid":(\d+)[^\n]*"msg":"listening for peers"/g)].map((m) => Number(m[1]));
  process.kill(pids[0]!, 'SIGKILL');
  await waitFor(() => proxy.output().includes('worker exited; starting another'), 20_000, 'the primary to log the dead worker');
  // the replacement is forked a second later and spends 4 s in init: scrape inside that window
  await new Promise((r) => setTimeout(r, 1500));
  const started = Date.now();
  const scrape = await httpRequest(proxy.metricsPort, 'GET', '/metrics');
  assert.equal(scrape.status, 200, `a scrape while a worker starts: ${scrape.text.slice(0, 200)}`);
  assert.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`);
  assert.match(scrape.text, /^bhp_connections 0$/m);
});

test('a worker killed while /ready and /metrics are polled: the primary lives on and is ready again', { skip, timeout: 120_000 }, async (t) => {
  const proxy = await workersProxy(t);
  let stop = false;
  const poll = async (route: string) => {
    while (!stop) await httpRequest(proxy.metricsPort, 'GET', route).catch(() => null);
  };
  // a probe and a scraper, several each: the primary asks every worker on each request
  const polling = [...Array.from({ length: 8 }, () => poll('/ready')), ...Array.from({ length: 2 }, () => poll('/metrics'))];
  try {
    for (let round = 0; round < 3; round++) {
      const pids = [...proxy.output().matchAll(/"pid":(\d+)[^\n]*"msg":"listening for peers"/g)].map((m) => Number(m[1]));
      process.kill(pids[pids.length - 1]!, 'SIGKILL');
      await waitFor(() => (proxy.output().match(/worker exited; starting another/g) ?? []).length > round || proxy.proc.exitCode !== null, 20_000, 'the primary to see the dead worker');
      assert.equal(proxy.proc.exitCode, null, `the primary is alive: ${proxy.output().slice(-800)}`);
      await waitFor(async () => (await httpRequest(proxy.metricsPort, 'GET', '/ready').catch(() => null))?.status === 200, 30_000, 'ready again with a replacement');
    }
  } finally {
    stop = true;
    await Promise.all(polling);
  }
  assert.equal(proxy.proc.exitCode, null);
});
