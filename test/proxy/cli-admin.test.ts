/**
 * The admin commands as an operator types them instead of curl: `peers`, `bans`, `ban ADDR`,
 * `unban ADDR`, `reload`, each a child process of the built dist/src/cli.js, against a proxy
 * started by `cli.js run` in front of a real node, with a real node connected through it.
 *
 * Real implementations: litecoind (Debian; Bitcoin Core 0.21's P2P code) as the backend, and a
 * second litecoind as a peer connecting through the proxy (-connect). One more peer is our test
 * client with a user agent full of terminal escapes, to show the table cannot be used against
 * the operator's terminal. Skipped, visibly, without litecoind.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cliAsync, RunningCli, tempDir } from '../support/cli-process.js';
import { litecoindSkipReason, startLitecoind, type PeerInfo } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';
import { ADMIN_TOKEN } from '../support/proxy-harness.js';
import { waitFor } from '../support/wait.js';

/** the environment of an operator who has not exported anything */
const bare: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'BHP_ADMIN_TOKEN' && k !== 'BHP_ADMIN_URL'));
const EVIL_AGENT = '/evil\x1b[2J\x1b]0;owned\x07:1.0/';

test('peers, bans, ban, unban, reload against a running proxy with real peers', { skip: litecoindSkipReason(), timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const backend = await startLitecoind({ name: 'cli-admin-backend', disableWallet: true });
  t.after(() => backend.stop());
  const [port, adminPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const config = path.join(dir, 'proxy.yaml');
  const yaml = [
    'network: regtest',
    `listen: "127.0.0.1:${port}"`,
    `backend: "${backend.p2pAddress}"`,
    `metrics: { listen: "127.0.0.1:${metricsPort}" }`,
    `admin: { listen: "127.0.0.1:${adminPort}", token: "${ADMIN_TOKEN}" }`,
    'bans: { file: bans.json }',
  ].join('\n');
  writeFileSync(config, yaml);
  const run = new RunningCli(config);
  t.after(() => run.kill());
  await run.waitForLog((l) => l.msg === 'admin API', 'the admin API to listen', 20_000);

  const peer = await startLitecoind({ name: 'cli-admin-peer', disableWallet: true, extraArgs: [`-connect=127.0.0.1:${port}`] });
  t.after(() => peer.stop());
  const evil = await P2PClient.connect(port, { localAddress: '127.0.0.7', userAgent: EVIL_AGENT });
  t.after(() => evil.close());
  evil.socket.on('error', () => {});
  await evil.handshake();
  const inbound = await waitFor(async () => {
    const peers = (await backend.rpc<PeerInfo[]>('getpeerinfo')).filter((p) => p.inbound);
    return peers.length === 2 && peers.every((p) => p.version > 0) ? peers : null;
  }, 60_000, 'both peers to reach the backend through the proxy');

  const env = { ...bare, BHP_ADMIN_TOKEN: ADMIN_TOKEN };
  const admin = ['--admin', `127.0.0.1:${adminPort}`];

  await t.test('peers: a table whose BACKEND column is the port bitcoind shows, user agents defanged', async (st) => {
    const r = await cliAsync(['peers', ...admin], env);
    assert.equal(r.status, 0, r.stderr);
    for (const line of r.stdout.trimEnd().split('\n')) st.diagnostic(line);
    const [header, ...rows] = r.stdout.trim().split('\n');
    assert.match(header!, /^ID +ADDRESS +BACKEND +VERSION +USER AGENT +HEIGHT +RECEIVED +SENT +SCORE +CONNECTED +HANDSHAKE$/);
    assert.equal(rows.length, 2, r.stdout);
    const ltc = inbound.find((p) => p.subver.startsWith('/LitecoinCore'))!;
    const backendPort = ltc.addr.split(':')[1]!;
    const row = rows.find((l) => l.includes(ltc.subver))!;
    assert.ok(row, `litecoind's row (${ltc.subver}): ${r.stdout}`);
    assert.match(row, new RegExp(`^ *\\d+ +127\\.0\\.0\\.1:\\d+ +${backendPort} +70016 +/LitecoinCore`), 'address, the backend port getpeerinfo shows, version');
    assert.match(row, / done$/, 'handshake done');
    assert.doesNotMatch(r.stdout, /[\x00-\x08\x0b-\x1f\x7f]/, 'no control characters reach the terminal');
    assert.match(r.stdout, /127\.0\.0\.7:\d+ .*\/evil\\u001b\[2J\\u001b\]0;owned\\u0007:1\.0\//, 'the escapes are shown, not obeyed');

    const json = await cliAsync(['peers', '--json', ...admin], env);
    assert.equal(json.status, 0, json.stderr);
    const peers = (JSON.parse(json.stdout) as { peers: { userAgent: string; backendLocalPort: number }[] }).peers;
    assert.deepEqual(peers.map((p) => p.userAgent).sort(), [EVIL_AGENT, ltc.subver].sort(), '--json keeps the data as it is');
    assert.ok(peers.some((p) => String(p.backendLocalPort) === backendPort));
  });

  await t.test('ban: on disk when it answers, the covered peer dropped, the other kept; bans lists it', async () => {
    const r = await cliAsync(['ban', '127.0.0.7', '--duration', '2h', '--reason', 'cli test', ...admin], env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^banned 127\.0\.0\.7\/32 until \d{4}-\d\d-\d\dT\S+Z \(in (1h59m|2h)\S*\): cli test\n$/);
    const saved = JSON.parse(readFileSync(path.join(dir, 'bans.json'), 'utf8')) as { bans: { subnet: string; reason: string }[] };
    assert.deepEqual(saved.bans.map((b) => [b.subnet, b.reason]), [['127.0.0.7/32', 'cli test']], 'acknowledged means written');
    assert.ok(await evil.closedWithin(10_000), 'the banned peer is disconnected');
    const listed = await cliAsync(['bans', ...admin], env);
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /^SUBNET +UNTIL +ENDS +REASON +CREATED\n127\.0\.0\.7\/32 +\S+ +in \S+ +cli test +\S+\n$/);
    const json = JSON.parse((await cliAsync(['bans', '--json', ...admin], env)).stdout) as { bans: { subnet: string }[] };
    assert.deepEqual(json.bans.map((b) => b.subnet), ['127.0.0.7/32']);
    const after = await cliAsync(['peers', ...admin], env);
    assert.equal(after.stdout.trim().split('\n').length, 2, `litecoind stays: ${after.stdout}`);
    const bad = await cliAsync(['ban', 'not-an-address', ...admin], env);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^ban not-an-address: not an address or subnet: "not-an-address"\n$/);
    const badDuration = await cliAsync(['ban', '10.0.0.1', '--duration', 'forever', ...admin], env);
    assert.equal(badDuration.status, 1);
    assert.match(badDuration.stderr, /"duration" must be positive/);
  });

  await t.test('unban: lifted and written; a second unban says there is none', async () => {
    const r = await cliAsync(['unban', '127.0.0.7', ...admin], env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'unbanned 127.0.0.7\n');
    assert.deepEqual((JSON.parse(readFileSync(path.join(dir, 'bans.json'), 'utf8')) as { bans: unknown[] }).bans, []);
    const again = await cliAsync(['unban', '127.0.0.7', ...admin], env);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /^unban: no ban for 127\.0\.0\.7.*bitcoin-hook-proxy bans/);
    assert.equal((await cliAsync(['bans', ...admin], env)).stdout, 'no bans\n');
  });

  await t.test('reload: applied; a broken config is refused with its line and the proxy keeps serving', async () => {
    const r = await cliAsync(['reload', ...admin], env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'reloaded: hook chain: (empty)\n');
    appendFileSync(config, '\nlimits: { maxPeerz: 3 }\n');
    const refused = await cliAsync(['reload', ...admin], env);
    assert.equal(refused.status, 1, refused.stdout);
    assert.match(refused.stderr, /^reload refused, the running config and hooks stay: .*limits\.maxPeerz \(line 7\): unknown key \(did you mean maxPeers\?\)/);
    writeFileSync(config, yaml);
    const peers = await cliAsync(['peers', ...admin], env);
    assert.equal(peers.status, 0, peers.stderr);
    assert.match(peers.stdout, /LitecoinCore/, 'the peer stayed through the refused reload');
  });

  await t.test('where the API is and the token: --config FILE, BHP_ADMIN_URL, --token', async () => {
    const fromConfig = await cliAsync(['peers', '--config', config], bare);
    assert.equal(fromConfig.status, 0, `listen and token from the config: ${fromConfig.stderr}`);
    assert.match(fromConfig.stdout, /LitecoinCore/);
    const fromEnv = await cliAsync(['bans', '--json'], { ...env, BHP_ADMIN_URL: `http://127.0.0.1:${adminPort}` });
    assert.equal(fromEnv.status, 0, fromEnv.stderr);
    const fromFlag = await cliAsync(['bans', '--token', ADMIN_TOKEN, ...admin], bare);
    assert.equal(fromFlag.status, 0, fromFlag.stderr);
  });

  await t.test('errors say what to do: no token, a wrong token, nothing listening, the metrics port, a bad URL', async () => {
    const none = await cliAsync(['peers', ...admin], bare);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^no admin token: export BHP_ADMIN_TOKEN \(the value of admin\.token in the proxy config\), or give --config FILE or --token\n/);
    const wrong = await cliAsync(['peers', ...admin], { ...bare, BHP_ADMIN_TOKEN: 'not-the-token-at-all' });
    assert.equal(wrong.status, 1);
    assert.equal(wrong.stderr, `http://127.0.0.1:${adminPort} refused the token (401): use the admin.token of the proxy's config (export BHP_ADMIN_TOKEN=..., or --config FILE)\n`);
    const dead = await freePort();
    const unreachable = await cliAsync(['reload', '--admin', `127.0.0.1:${dead}`], env);
    assert.equal(unreachable.status, 1);
    assert.equal(unreachable.stderr, `cannot reach the admin API at http://127.0.0.1:${dead} (connection refused): is the proxy running with admin: enabled in its config? Point at it with --admin URL or --config FILE\n`);
    const metrics = await cliAsync(['peers', '--admin', `http://127.0.0.1:${metricsPort}`], env);
    assert.equal(metrics.status, 1);
    assert.match(metrics.stderr, /answered HTTP 404 without the admin API's JSON: is that the admin listener \(admin\.listen\), not the metrics one\?/);
    const badUrl = await cliAsync(['peers', '--admin', 'ftp://127.0.0.1:21'], env);
    assert.equal(badUrl.status, 2);
    assert.match(badUrl.stderr, /^--admin must be an http:\/\/ or https:\/\/ URL, not ftp:/);
    for (const r of [none, wrong, unreachable, metrics, badUrl]) assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.stderr);
});
