/**
 * The Grafana dashboard and the alert rules against real data: Debian's `prometheus` scrapes
 * the proxy (the built CLI, run from a config file with a port-0 P2P listener) while peers use
 * it, then every query of deploy/grafana/bitcoin-hook-proxy.json and every alert of
 * deploy/prometheus/alerts.yml is asked through Prometheus's HTTP API. `promtool check rules`
 * and `promtool check config` check the files.
 *
 * Real implementations: Prometheus 2.42 and promtool (Debian package prometheus), bcoin 1.0.2
 * (npm) as the backend node, our raw P2P client as the peers, the built CLI as the proxy.
 * Skipped, visibly, where the prometheus package is not installed (.ci/run installs it).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NETWORKS, encodeFrame } from '../../src/codec/index.js';
import { bcoinAvailable, startBcoin, type BcoinNode } from '../support/bcoin-node.js';
import { P2PClient, headerDeclaring, httpRequest } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';
import { sleep, waitFor } from '../support/wait.js';
import { PaywallClient } from '../hooks/paywall/doc-client.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = path.join(ROOT, 'dist/src/cli.js');
const DASHBOARD = path.join(ROOT, 'deploy/grafana/bitcoin-hook-proxy.json');
const ALERTS = path.join(ROOT, 'deploy/prometheus/alerts.yml');
const TOKEN = 'prometheus-test-token-0123456789';

const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const prometheusSkip = process.env.CI || (has('prometheus') && has('promtool')) ? false : 'prometheus is not installed (apt-get install prometheus; .ci/run does)';

interface Target {
  panel: string;
  expr: string;
}

/** Every query of the dashboard, with Grafana's variables replaced as Grafana would for "All". */
function dashboardQueries(): Target[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; type: string; targets?: { expr: string }[] }[] };
  return dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.+') })));
}

test('promtool: the alert rules and the scrape config are valid', { skip: prometheusSkip }, () => {
  const rules = spawnSync('promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' });
  assert.equal(rules.status, 0, rules.stdout + rules.stderr);
  assert.match(rules.stdout, /SUCCESS: 6 rules found/);
  const config = spawnSync('promtool', ['check', 'config', path.join(ROOT, 'deploy/prometheus/prometheus.yml')], { encoding: 'utf8' });
  assert.equal(config.status, 0, config.stdout + config.stderr);
});

test('Prometheus scrapes the proxy under traffic: every dashboard query and every alert returns data', { skip: prometheusSkip || (bcoinAvailable() ? false : 'bcoin not installed'), timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-prometheus-'));
  const children: ChildProcess[] = [];
  const clients: P2PClient[] = [];
  let node: BcoinNode | undefined;
  let pinging = true;
  t.after(async () => {
    pinging = false;
    for (const c of clients) await c.close().catch(() => {});
    for (const c of children) c.kill('SIGKILL');
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  node = await startBcoin({ name: 'prometheus-backend' });
  const [metricsPort, adminPort, promPort] = [await freePort(), await freePort(), await freePort()];

  // the proxy, as an operator runs it: the CLI and a config file (P2P listener on port 0)
  const configFile = path.join(dir, 'proxy.yaml');
  const configText = [
    'network: regtest',
    'listen: ["127.0.0.1:0"]',
    `backend: 127.0.0.1:${node.port}`,
    `metrics: { listen: "127.0.0.1:${metricsPort}" }`,
    `admin: { listen: "127.0.0.1:${adminPort}", token: "${TOKEN}" }`,
    'limits: { maxPeersPerAddress: 2 }',
    `bans: { file: ${JSON.stringify(path.join(dir, 'bans', 'bans.json'))}, threshold: 100 }`,
    'log: { level: info }',
    'hooks:',
    `  - module: ${JSON.stringify(path.join(ROOT, 'dist/test/hooks/fixtures/faulty.js'))}`,
    '    options: { throw: mempool }',
    `  - module: ${JSON.stringify(path.join(ROOT, 'dist/hooks/message-filter.js'))}`,
    '    options: { inbound: { deny: [{ command: getaddr, action: { misbehave: 10 } }, { command: filterclear, action: { misbehave: 100 } }] } }',
    // paid access on the dev Lightning backend, for the revenue panels
    `  - module: ${JSON.stringify(path.join(ROOT, 'dist/hooks/features.js'))}`,
    `  - module: ${JSON.stringify(path.join(ROOT, 'dist/hooks/paywall/index.js'))}`,
    `    options: { backend: { kind: dev }, store: { file: ${JSON.stringify(path.join(dir, 'paywall.json'))} }, keys: { file: ${JSON.stringify(path.join(dir, 'paywall.keys'))} }, passes: { pro: { priceSats: 2000, duration: 24h } } }`,
  ].join('\n');
  writeFileSync(path.join(dir, 'paywall.keys'), `1 ${'5a'.repeat(32)}\n`, { mode: 0o600 });
  writeFileSync(configFile, configText);
  const proxy = spawn(process.execPath, [CLI, 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proxy);
  let proxyOut = '';
  proxy.stdout!.on('data', (d: Buffer) => (proxyOut += d.toString()));
  proxy.stderr!.on('data', (d: Buffer) => (proxyOut += d.toString()));
  const proxyPort = Number(
    (await waitFor(() => /"listen":"127\.0\.0\.1:(\d+)"[^\n]*"msg":"listening for peers"/.exec(proxyOut), 30_000, `the proxy to listen (output: ${proxyOut})`))[1],
  );
  assert.ok(proxyPort > 0);

  // Prometheus, scraping every second and evaluating the shipped rules every second
  const promConfig = path.join(dir, 'prometheus.yml');
  writeFileSync(
    promConfig,
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: [${JSON.stringify(ALERTS)}]`,
      'scrape_configs:',
      '  - job_name: bitcoin-hook-proxy',
      `    static_configs: [{ targets: ["127.0.0.1:${metricsPort}"] }]`,
    ].join('\n'),
  );
  const prom = spawn('prometheus', [`--config.file=${promConfig}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(prom);
  let promErr = '';
  prom.stderr!.on('data', (d: Buffer) => (promErr += d.toString()));
  const api = async (p: string) => {
    const res = await fetch(`http://127.0.0.1:${promPort}${p}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { status: string; data: unknown; error?: string };
    if (body.status !== 'success') throw new Error(`${p}: ${body.error}`);
    return body.data;
  };
  const query = async (expr: string) => (await api(`/api/v1/query?query=${encodeURIComponent(expr)}`)) as { result: { metric: Record<string, string>; value: [number, string] }[] };
  await waitFor(async () => (await fetch(`http://127.0.0.1:${promPort}/-/ready`)).ok, 60_000, `prometheus to be ready (stderr: ${promErr})`);
  await waitFor(async () => (await query('up{job="bitcoin-hook-proxy"} == 1')).result.length === 1, 60_000, 'prometheus to scrape the proxy');

  // --- traffic ---
  const peer = async (from: string) => {
    const c = await P2PClient.connect(proxyPort, { localAddress: from });
    clients.push(c);
    return c;
  };
  // a steady peer pinging: messages both ways, hook calls and their latency, all the time
  const steady = await peer('127.0.0.2');
  await steady.handshake(20_000);
  void (async () => {
    for (let nonce = 1n; pinging && !steady.isClosed; nonce++) {
      steady.send('ping', { nonce });
      await sleep(200);
    }
  })();
  // an x: command nobody registered, then a command the faulty hook throws on (hook error)
  const faulty = await peer('127.0.0.6');
  await faulty.handshake(20_000);
  faulty.sendRaw(encodeFrame(NETWORKS.regtest, 'x:nothing').raw);
  faulty.send('mempool', {});
  await faulty.closed;
  // misbehaviour below and at the threshold: banned
  const bad = await peer('127.0.0.3');
  await bad.handshake(20_000);
  bad.send('getaddr', {});
  bad.sendRaw(encodeFrame(NETWORKS.regtest, 'filterclear').raw);
  await bad.closed;
  // a frame header declaring more than bitcoind would ever accept: a protocol error
  const garbage = await peer('127.0.0.7');
  await garbage.handshake(20_000);
  garbage.sendRaw(headerDeclaring(NETWORKS.regtest, 'block', 0x7fffffff));
  await garbage.closed;
  // a third connection from one address over maxPeersPerAddress 2
  const same = [await peer('127.0.0.4'), await peer('127.0.0.4'), await peer('127.0.0.4')];
  await waitFor(() => same.some((c) => c.isClosed), 20_000, 'the third connection from 127.0.0.4 to be refused');
  // the banned address keeps coming back: a refusal spike, spread over several scrapes
  let refused = 0;
  const refusedSeen = async () => Number((await query('sum(bhp_connections_refused_total{reason="banned"})')).result[0]?.value[1] ?? 0);
  while (refused < 400) {
    for (let i = 0; i < 80; i++, refused++) await (await peer('127.0.0.3')).closed;
    const target = refused;
    await waitFor(async () => (await refusedSeen()) >= target, 30_000, `prometheus to see ${target} refusals`);
  }
  // a buyer (client written from docs/x-protocol.md): a refused invoice, then a pass paid on the
  // dev backend through the admin API. bcoin's version is below 70016, so it announces early (§2.6).
  const buyer = await PaywallClient.connect(proxyPort, { announce: 'early', localAddress: '127.0.0.9' });
  assert.equal((await buyer.invoice('gold')).ok, false, 'unknown offer refused');
  const inv = await buyer.invoice('pro');
  assert.ok(inv.ok);
  const paid = await httpRequest(adminPort, 'POST', '/hooks/paywall/settle', { token: TOKEN, body: { bolt11: inv.value.bolt11 } });
  assert.equal(paid.status, 200, paid.text);
  assert.ok((await buyer.claim(inv.value.paymentHash, inv.value.claimToken, Buffer.from(paid.json.preimage, 'hex'))).ok);
  await waitFor(async () => Number((await query('sum(bhp_hook_paywall_earned_msat_total)')).result[0]?.value[1] ?? 0) === 2_000_000, 30_000, 'prometheus to see the 2,000 sat earned');
  await buyer.close();
  for (const c of clients.splice(0).filter((c) => c !== steady)) await c.close();
  await sleep(2500); // a few more scrapes of the steady peer's traffic

  await t.test('every dashboard query returns data', async () => {
    const targets = dashboardQueries();
    assert.ok(targets.length >= 25, `${targets.length} queries`);
    const metricNames = new Set<string>();
    for (const { panel, expr } of targets) {
      for (const m of expr.matchAll(/\b(bhp_[a-z0-9_]+)/g)) metricNames.add(m[1]!);
      const r = await waitFor(async () => ((await query(expr)).result.length > 0 ? query(expr) : null), 60_000, `data for "${panel}": ${expr}`);
      assert.ok(r.result.length > 0, `${panel}: ${expr}`);
      for (const s of r.result) assert.ok(!Number.isNaN(Number(s.value[1])) || expr.includes('histogram_quantile'), `${panel}: ${expr} -> ${s.value[1]}`);
    }
    // the panels the dashboard promises
    for (const name of ['bhp_connections', 'bhp_connections_refused_total', 'bhp_messages_total', 'bhp_message_bytes_total', 'bhp_hook_invocation_seconds_bucket', 'bhp_hook_errors_total', 'bhp_bans', 'bhp_backend_up', 'bhp_hook_paywall_earned_msat_total', 'bhp_hook_paywall_paid_peers']) {
      assert.ok(metricNames.has(name), `the dashboard shows ${name}`);
    }
    const refusals = await query('sum by (reason) (bhp_connections_refused_total)');
    assert.deepEqual(refusals.result.map((s) => s.metric.reason).sort(), ['banned', 'max_per_address']);
    const bytes = await query('sum by (direction) (bhp_message_bytes_total{command="ping"})');
    assert.deepEqual(bytes.result.map((s) => s.metric.direction).sort(), ['inbound']);
    const pongs = await query('bhp_messages_total{command="pong",direction="outbound"}');
    assert.ok(Number(pongs.result[0]?.value[1]) >= 5, 'bcoin answered the pings through the proxy');
  });

  // --- make every alert's condition true ---
  // a refused reload: the config names a hook module that is not there
  writeFileSync(configFile, configText + `\n  - module: ${JSON.stringify(path.join(dir, 'no-such-hook.js'))}\n`);
  assert.equal((await httpRequest(adminPort, 'POST', '/reload', { token: TOKEN })).status, 422);
  // the ban directory is replaced by a regular file (ENOTDIR, even as root), then a ban is added: the write fails, 503
  rmSync(path.join(dir, 'bans'), { recursive: true, force: true });
  writeFileSync(path.join(dir, 'bans'), 'not a directory');
  assert.equal((await httpRequest(adminPort, 'POST', '/bans', { token: TOKEN, body: { subnet: '198.51.100.0/24', duration: '1h' } })).status, 503);
  // bitcoind (here bcoin) goes away: the next peer is refused and the backend is down
  await node.stop();
  node = undefined;
  await (await peer('127.0.0.8')).closed;

  const rulesFile = readFileSync(ALERTS, 'utf8');
  const alertNames = [...rulesFile.matchAll(/- alert: (\w+)/g)].map((m) => m[1]!);
  assert.equal(alertNames.length, 6);
  const state = async (name: string) => {
    const data = (await api('/api/v1/rules?type=alert')) as { groups: { rules: { name: string; state: string; health: string; lastError?: string; query: string }[] }[] };
    const rule = data.groups.flatMap((g) => g.rules).find((r) => r.name === name);
    assert.ok(rule, `rule ${name} is loaded`);
    assert.equal(rule.health === 'err' ? rule.lastError : undefined, undefined, `${name} evaluates without error`);
    return rule;
  };
  const awaitAlert = async (name: string) => {
    const rule = await waitFor(async () => {
      const r = await state(name);
      return r.state === 'pending' || r.state === 'firing' ? r : null;
    }, 90_000, `alert ${name} to be pending or firing`);
    assert.ok((await query(rule.query)).result.length > 0, `${name}: its expression returns data`);
  };
  for (const name of alertNames.filter((n) => n !== 'BitcoinHookProxyDown')) {
    await t.test(`alert ${name}`, () => awaitAlert(name));
  }
  await t.test('alert BitcoinHookProxyDown: the proxy killed, the scrape fails', async () => {
    proxy.kill('SIGKILL');
    await awaitAlert('BitcoinHookProxyDown');
  });
});
