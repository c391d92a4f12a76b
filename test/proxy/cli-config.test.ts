/**
 * The operator surface of the built CLI, run as a child process exactly as an operator runs it:
 * `node dist/src/cli.js check|run --config FILE`, --help, --version, graceful shutdown on
 * SIGTERM, a backend that is not there, hostile configs (alias bombs, 1 MiB of keys, /dev/zero),
 * hook modules that hang or are misspelt, a port already taken, and an exposed admin API.
 *
 * Real implementations: the built CLI (dist/src/cli.js) and its YAML loader. The backend for
 * the shutdown test is a plain net server that accepts and holds connections (the test is
 * about the proxy's shutdown, not about P2P); the unreachable backend is a free port nobody
 * listens on.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { P2PClient, httpRequest } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';
import { HOOK_API_VERSION } from '../../src/hooks/index.js';
import { ADMIN_TOKEN } from '../support/proxy-harness.js';
import { CLI, cli, RunningCli, ROOT, tempDir } from '../support/cli-process.js';
import { waitFor } from '../support/wait.js';

const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

test('check: listeners on port 0 never clash (the OS gives each its own port)', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'zero.yaml');
  writeFileSync(file, ['network: regtest', 'listen: "127.0.0.1:0"', 'backend: 127.0.0.1:18444', 'metrics: { listen: "127.0.0.1:0" }', 'admin: { listen: "127.0.0.1:0", token: "aaaaaaaaaaaaaaaaaaaa" }'].join('\n'));
  const r = cli(['check', '--config', file]);
  assert.equal(r.status, 0, r.stderr);
});

test('check: a valid file exits 0', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'ok.yaml');
  writeFileSync(file, ['network: regtest', 'listen: ["127.0.0.1:18555", "[::1]:18555"]', 'backend: 127.0.0.1:18444', 'limits: { handshakeTimeout: 30s, sendBuffer: 2MB }', 'admin: { token: "${BHP_TEST_TOKEN}" }'].join('\n'));
  const r = cli(['check', '--config', file], { ...process.env, BHP_TEST_TOKEN: 'x'.repeat(20) });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /valid \(network regtest, 2 listener\(s\), backend 127\.0\.0\.1:18444/);
});

test('check and run: invalid files exit 1 with one line per problem naming the key and the line, the same for both', async (t) => {
  const dir = tempDir(t);
  const base = ['network: regtest', 'backend: 127.0.0.1:18444'];
  // 9 levels of 9 aliases: 9^6 nodes if expanded
  const aliasBomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', ...'bcdef'.split('').map((x, i) => `${x}: &${x} [${Array(9).fill(`*${'abcdef'[i]}`).join(',')}]`)];
  const cases: { name: string; yaml: string[]; expect: RegExp }[] = [
    { name: 'unknown key', yaml: [...base, 'limits:', '  maxPeerz: 3'], expect: /limits\.maxPeerz \(line 4\): unknown key \(did you mean maxPeers\?\)\n$/ },
    { name: 'unknown key, nothing near it', yaml: [...base, 'limits:', '  speed: 3'], expect: /limits\.speed \(line 4\): unknown key\n$/ },
    { name: 'a typo inside a union', yaml: [...base, 'metrics: { lisen: "127.0.0.1:9333" }'], expect: /metrics\.lisen \(line 3\): unknown key \(did you mean listen\?\)\n$/ },
    { name: 'unknown key with a block value', yaml: [...base, 'limits:', '  maxPeers: 3', '  foo:', '    bar: 1'], expect: /limits\.foo \(line 5\): unknown key/ },
    { name: 'unknown top-level key', yaml: [...base, 'bakcend: 127.0.0.1:1'], expect: /bakcend \(line 3\): unknown key \(did you mean backend\?\)\n$/ },
    { name: 'bad duration', yaml: [...base, 'limits:', '  maxPeers: 8', '  handshakeTimeout: 5 parsecs'], expect: /limits\.handshakeTimeout \(line 5\): expected a duration.*5 parsecs/ },
    { name: 'a timeout longer than a Node timer', yaml: [...base, 'limits: { idleTimeout: 30d }'], expect: /limits\.idleTimeout \(line 3\): expected a duration.* up to 24d.*"30d"/ },
    // timers that overflow fire after 1 ms: a 30d sync interval compared every ban with Redis 800 times a second
    { name: 'a Redis sync interval longer than a Node timer', yaml: [...base, 'store: { redis: "redis://127.0.0.1:1", syncInterval: 30d }'], expect: /store\.syncInterval \(line 3\): expected a duration.* up to 24d.*"30d"/ },
    { name: 'a Redis sync interval of 0', yaml: [...base, 'store: { redis: "redis://127.0.0.1:1", syncInterval: 0 }'], expect: /store\.syncInterval \(line 3\): expected at least 1s/ },
    { name: 'a reserved-slot timeout longer than a Node timer', yaml: [...base, 'limits: { reservedAuthTimeout: 30d }'], expect: /limits\.reservedAuthTimeout \(line 3\): expected a duration.* up to 24d/ },
    { name: 'a SOCKS timeout longer than a Node timer', yaml: [...base, 'outbound: { socks: { negotiateTimeout: 30d } }'], expect: /outbound\.socks\.negotiateTimeout \(line 3\): expected a duration.* up to 24d/ },
    // a ban of 0 ms is never made: a peer at bans.threshold would be neither banned nor disconnected
    { name: 'a ban duration of 0', yaml: [...base, 'bans: { duration: 0 }'], expect: /bans\.duration \(line 3\): expected more than 0/ },
    { name: 'a backend-disconnect ban duration of 0', yaml: [...base, 'bans: { backendDisconnects: { duration: 0s } }'], expect: /bans\.backendDisconnects\.duration \(line 3\): expected more than 0/ },
    // 0 is "off" for connectionRate bursts and backendDisconnects.count, but here it refused every peer
    { name: 'maxPeersPerAddress of 0', yaml: [...base, 'limits: { maxPeersPerAddress: 0 }'], expect: /limits\.maxPeersPerAddress \(line 3\): .*>=1/ },
    { name: 'maxPeersPerSubnet of 0', yaml: [...base, 'limits: { maxPeersPerSubnet: 0 }'], expect: /limits\.maxPeersPerSubnet \(line 3\): .*>=1/ },
    { name: 'a size of 1e300', yaml: [...base, 'limits: { sendBuffer: 1e300 }'], expect: /limits\.sendBuffer \(line 3\): expected a size like 5MB/ },
    { name: 'bad host:port', yaml: ['network: regtest', 'backend: localhost'], expect: /backend \(line 2\): expected host:port.*"localhost"/ },
    { name: 'port out of range', yaml: ['network: regtest', 'backend: 127.0.0.1:70000'], expect: /backend \(line 2\): expected host:port/ },
    { name: 'missing env var', yaml: [...base, 'admin:', '  listen: 127.0.0.1:9334', '  token: "${BHP_SURELY_NOT_SET}"'], expect: /admin\.token \(line 5\): environment variable BHP_SURELY_NOT_SET is not set/ },
    { name: 'missing admin token', yaml: [...base, 'admin:', '  listen: 127.0.0.1:9334'], expect: /admin\.token \(not set; add it under admin on line 3\): required: set it or \$\{BHP_ADMIN_TOKEN\}/ },
    { name: 'admin token of whitespace', yaml: [...base, 'admin:', `  token: "${' '.repeat(24)}"`], expect: /admin\.token \(line 4\): only whitespace/ },
    { name: 'admin token from an env var of whitespace', yaml: [...base, 'admin: { token: "${BHP_TEST_BLANK}" }'], expect: /admin\.token \(line 3\): only whitespace/ },
    { name: 'admin token with a space inside', yaml: [...base, 'admin: { token: "abcdefghij klmnopqrstu" }'], expect: /admin\.token \(line 3\): contains whitespace/ },
    // no client can send it: Node refuses the header ("Invalid character"), curl's UTF-8 bytes are read as latin1 (401)
    { name: 'admin token with non-ASCII characters', yaml: [...base, 'admin: { token: "pa€€word-0123456789" }'], expect: /admin\.token \(line 3\): .*ASCII/ },
    { name: 'admin: true', yaml: [...base, 'admin: true'], expect: /admin \(line 3\): expected false, or expected object/ },
    { name: 'two settings on one port', yaml: [...base, 'metrics: { listen: "127.0.0.1:9444" }', 'admin: { listen: "0.0.0.0:9444", token: "aaaaaaaaaaaaaaaaaaaa" }'], expect: /admin\.listen \(line 4\): 0\.0\.0\.0:9444 is also metrics\.listen 127\.0\.0\.1:9444/ },
    // `run` failed on these with "another process listens there": it was the proxy's own other listener
    { name: 'one listener written twice', yaml: [...base, 'listen: ["127.0.0.1:18555", "127.0.0.1:18555"]'], expect: /listen\.1 \(line 3\): 127\.0\.0\.1:18555 is also listen\.0 127\.0\.0\.1:18555/ },
    { name: 'a listener inside a wildcard on its port', yaml: [...base, 'listen:', '  - "0.0.0.0:18555"', '  - "127.0.0.1:18555"'], expect: /listen\.1 \(line 5\): 127\.0\.0\.1:18555 is also listen\.0 0\.0\.0\.0:18555/ },
    { name: 'the SOCKS front on the P2P port', yaml: [...base, 'listen: "127.0.0.1:18555"', 'outbound: { socks: { listen: "127.0.0.1:18555" } }'], expect: /outbound\.socks\.listen \(line 4\): 127\.0\.0\.1:18555 is also listen 127\.0\.0\.1:18555/ },
    // ipaddr.js reads "10.5" as 10.0.0.5: trusting a host the operator never named lets it claim any peer address
    { name: 'a trusted balancer in a short IPv4 form', yaml: [...base, 'proxyProtocol: { trusted: ["10.5"] }'], expect: /proxyProtocol\.trusted\.0 \(line 3\): expected an address or CIDR/ },
    // the HTTP listeners are dual-stack: [::] takes the IPv4 port too (the P2P and SOCKS ones are IPv6-only)
    { name: 'metrics on 0.0.0.0 and admin on [::] of one port', yaml: [...base, 'metrics: { listen: "0.0.0.0:18556" }', 'admin: { listen: "[::]:18556", token: "aaaaaaaaaaaaaaaaaaaa" }'], expect: /admin\.listen \(line 4\): \[::\]:18556 is also metrics\.listen 0\.0\.0\.0:18556/ },
    { name: 'YAML syntax error', yaml: [...base, 'limits: {maxPeers: 3', 'bans:', '  file: x'], expect: /line [3-4]: YAML syntax/ },
    { name: 'duplicate key', yaml: ['network: regtest', 'backend: 127.0.0.1:1', 'backend: 127.0.0.1:2'], expect: /backend \(line 3\): duplicate key "backend" \(first on line 2\)/ },
    { name: 'duplicate nested key', yaml: [...base, 'hooks:', '  - module: ./a.js', '    options:', '      deny: [ping]', '      deny: [pong]'], expect: /hooks\.0\.options\.deny \(line 7\): duplicate key "deny" \(first on line 6\)/ },
    { name: 'alias bomb', yaml: aliasBomb, expect: /YAML aliases expand too far/ },
    { name: 'nesting 100,000 deep', yaml: [`a: ${'['.repeat(100_000)}${']'.repeat(100_000)}`], expect: /line 1: YAML syntax: .*call stack/ },
    { name: 'unknown network', yaml: ['network: moonnet', 'backend: 127.0.0.1:18444'], expect: /network \(line 1\): unknown network "moonnet"/ },
    // a key that is not there has no line: the message says so instead of naming the first key's
    { name: 'missing backend', yaml: ['# the proxy', '', 'network: regtest'], expect: /: backend \(not set; add it at the top level\): required: the host:port of bitcoind's P2P listener/ },
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, BHP_TEST_BLANK: '   \t ' };
  delete env.BHP_SURELY_NOT_SET;
  for (const c of cases) {
    await t.test(c.name, () => {
      const file = path.join(dir, `${c.name.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(file, c.yaml.join('\n') + '\n');
      const r = cli(['check', '--config', file], env);
      assert.equal(r.status, 1, `exit 1 (stdout: ${r.stdout}, stderr: ${r.stderr})`);
      assert.match(r.stderr, c.expect);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.ok(r.stderr.startsWith(`${file}: `), 'the line names the file');
      assert.doesNotMatch(r.stderr, /line \?/, 'every message has its line');
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      const run = cli(['run', '--config', file], env);
      assert.deepEqual([run.status, run.stdout, run.stderr], [1, '', r.stderr], '`run` says exactly what `check` says');
    });
  }
  const missing = cli(['check', '--config', path.join(dir, 'does-not-exist.yaml')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot read/);
});

test('typos: "did you mean" for config keys, and a hook option typo names its line; check and run say the same', (t) => {
  const dir = tempDir(t);
  const typo = path.join(dir, 'typo.yaml');
  writeFileSync(typo, ['network: regtest', 'bakend: 127.0.0.1:1'].join('\n'));
  const r = cli(['check', '--config', typo]);
  assert.equal(r.status, 1);
  assert.deepEqual(r.stderr.trim().split('\n').sort(), [
    `${typo}: backend (not set; add it at the top level): required: the host:port of bitcoind's P2P listener, on loopback, e.g. backend: "127.0.0.1:8433" (see deploy/bitcoin.conf)`,
    `${typo}: bakend (line 2): unknown key (did you mean backend?)`,
  ]);

  // shipped hooks, loaded by package name; the typo is in the second hook, three levels down
  const hooks = path.join(dir, 'hooks.yaml');
  const yaml = [
    'network: regtest', //                                       1
    'backend: 127.0.0.1:1', //                                   2
    'hooks:', //                                                 3
    '  - module: bitcoin-hook-proxy/hooks/message-filter', //    4
    '    options: { inbound: { deny: [mempool] } }', //          5
    '  - module: bitcoin-hook-proxy/hooks/message-filter', //    6
    '    options:', //                                           7
    '      inbound:', //                                         8
    '        deny: [mempool]', //                                9
    '        denyy: [ping]', //                                 10
    '      acton: drop', //                                     11
  ];
  writeFileSync(hooks, yaml.join('\n'));
  const checked = cli(['check', '--config', hooks]);
  assert.equal(checked.status, 1, checked.stdout);
  assert.equal(checked.stderr.trim().split('\n').length, 1, checked.stderr);
  assert.match(checked.stderr, /^hook module bitcoin-hook-proxy\/hooks\/message-filter: hook "message-filter" has invalid options: /);
  assert.match(checked.stderr, /hooks\.1\.options\.inbound\.denyy \(line 10\): unknown key \(did you mean deny\?\)/);
  assert.match(checked.stderr, /hooks\.1\.options\.acton \(line 11\): unknown key \(did you mean action\?\)/);
  const run = cli(['run', '--config', hooks]);
  assert.deepEqual([run.status, run.stderr], [1, checked.stderr], '`run` says exactly what `check` says');
  // the same hooks without the typos load
  writeFileSync(hooks, yaml.slice(0, 9).join('\n'));
  const fixed = cli(['check', '--config', hooks]);
  assert.equal(fixed.status, 0, fixed.stderr);
});

test('check: configs above 1 MiB are refused before parsing; 1 MiB of keys is parsed in linear time', { timeout: 120_000 }, (t) => {
  const dir = tempDir(t);
  // an endless file: only a bounded read can answer at all
  const endless = cli(['check', '--config', '/dev/zero']);
  assert.equal(endless.status, 1, endless.stderr);
  assert.match(endless.stderr, /^\/dev\/zero: larger than 1048576 bytes \(1 MiB\): refused before parsing/);
  const big = path.join(dir, 'big.yaml');
  writeFileSync(big, ['network: regtest', 'backend: 127.0.0.1:1', ...Array.from({ length: 120_000 }, (_, i) => `# comment ${i}`)].join('\n'));
  const r = cli(['check', '--config', big]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /big\.yaml: larger than 1048576 bytes/);
  // 100,000 distinct keys just under the cap: the yaml package's own duplicate check is
  // quadratic (147 s here); ours is linear, so this answers within the spawn's 100 s timeout
  const lines = ['network: regtest', 'backend: 127.0.0.1:1'];
  let size = 40;
  for (let i = 0; size < 1024 * 1024 - 64; i++) size += (lines[lines.push(`k${i}: 1`) - 1]!.length + 1);
  const keys = path.join(dir, 'keys.yaml');
  writeFileSync(keys, lines.join('\n'));
  const many = spawnSync(process.execPath, [CLI, 'check', '--config', keys], { encoding: 'utf8', timeout: 100_000 });
  assert.equal(many.status, 1, `exit 1, not killed by the timeout (signal ${many.signal})`);
  assert.match(many.stderr, /keys\.yaml: k0 \(line 3\): unknown key\n/);
  assert.match(many.stderr, new RegExp(`keys\\.yaml: \\.\\.\\. and ${lines.length - 2 - 20} more\\n$`), 'at most 20 issues, then a count');
});

test('--help, --version, and usage errors', () => {
  const help = cli(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage:/);
  assert.match(help.stdout, /run +--config FILE/);
  assert.match(help.stdout, /check --config FILE/);
  const version = cli(['--version']);
  assert.equal(version.status, 0);
  assert.equal(version.stdout.trim(), VERSION);
  assert.equal(cli([]).status, 2, 'no command: usage, exit 2');
  const unknown = cli(['frobnicate']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const noConfig = cli(['run']);
  assert.equal(noConfig.status, 2);
  assert.match(noConfig.stderr, /needs --config/);
});

test('run, then SIGTERM: stops accepting, closes sessions, saves bans, exits 0', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const backendSockets: net.Socket[] = [];
  const backend = net.createServer((s) => {
    backendSockets.push(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  const [port, adminPort] = [await freePort(), await freePort()];
  const bansFile = path.join(dir, 'bans.json');
  const config = path.join(dir, 'proxy.yaml');
  writeFileSync(
    config,
    [
      'network: regtest',
      `listen: "127.0.0.1:${port}"`,
      `backend: "127.0.0.1:${(backend.address() as net.AddressInfo).port}"`,
      'metrics: false',
      `admin: { listen: "127.0.0.1:${adminPort}", token: "${ADMIN_TOKEN}" }`,
      'bans: { file: bans.json }',
    ].join('\n'),
  );
  const run = new RunningCli(config);
  let peer: P2PClient | undefined;
  t.after(async () => {
    run.kill();
    await peer?.close();
    for (const s of backendSockets) s.destroy();
    await new Promise<void>((r) => backend.close(() => r()));
  });
  await run.waitForLog((l) => l.msg === 'listening for peers', '"listening for peers"');
  peer = await P2PClient.connect(port);
  // the start-up probe connects (and closes) first; the session's backend connection is the last one
  await run.waitForLog((l) => l.msg === 'peer connected', '"peer connected"');
  await waitFor(() => backendSockets.some((s) => !s.destroyed && s.readyState === 'open'), 5000, 'the session to reach the backend');
  const backendClosed = new Promise<void>((r) => backendSockets[backendSockets.length - 1]!.once('close', () => r()));

  const added = await httpRequest(adminPort, 'POST', '/bans', { token: ADMIN_TOKEN, body: { address: '10.1.2.3', duration: '1h' } });
  assert.equal(added.status, 201);
  await waitFor(() => existsSync(bansFile), 5000, 'the ban file');
  // remove the file: only the save at shutdown can bring it back
  rmSync(bansFile);

  run.child.kill('SIGTERM');
  const exit = await Promise.race([run.exited, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
  assert.deepEqual(exit, { code: 0, signal: null }, `exit 0 on SIGTERM (stderr: ${run.stderr})`);
  assert.ok(await peer.closedWithin(1000), 'the peer session was closed');
  await backendClosed;
  assert.ok(existsSync(bansFile), 'bans were saved at shutdown');
  const saved = JSON.parse(readFileSync(bansFile, 'utf8')) as { bans: { subnet: string }[] };
  assert.deepEqual(saved.bans.map((b) => b.subnet), ['10.1.2.3/32']);
  assert.ok(run.lines.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'));
  assert.ok(run.lines.some((l) => l.msg === 'peer disconnected' && l.reason === 'shutdown'));
  assert.ok(run.lines.some((l) => l.msg === 'proxy stopped'));
  // the listener is gone
  await assert.rejects(P2PClient.connect(port, { connectTimeoutMs: 1000 }));
});

test('run with an unreachable backend: starts, refuses peers with a clear log line, not ready, exits 0 on SIGTERM', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const [port, adminPort, deadPort] = [await freePort(), await freePort(), await freePort()];
  const config = path.join(dir, 'proxy.yaml');
  writeFileSync(
    config,
    [
      'network: regtest',
      `listen: "127.0.0.1:${port}"`,
      `backend: "127.0.0.1:${deadPort}"`,
      'metrics: false',
      `admin: { listen: "127.0.0.1:${adminPort}", token: "${ADMIN_TOKEN}" }`,
    ].join('\n'),
  );
  const run = new RunningCli(config);
  t.after(() => run.kill());
  await run.waitForLog((l) => l.msg === 'listening for peers', '"listening for peers"');
  for (let i = 0; i < 3; i++) {
    const peer = await P2PClient.connect(port);
    peer.socket.on('error', () => {});
    assert.ok(await peer.closedWithin(3000), `peer ${i} refused`);
  }
  const unreachable = await run.waitForLog((l) => /backend unreachable/.test(String(l.msg)), 'a "backend unreachable" line');
  assert.equal(unreachable.backend, `127.0.0.1:${deadPort}`);
  assert.equal(unreachable.level, 50, 'logged as an error');
  assert.equal(run.lines.filter((l) => /backend unreachable/.test(String(l.msg))).length, 1, 'said once, not once per peer');
  assert.equal(run.lines.filter((l) => l.msg === 'connection refused' && l.reason === 'backend_down').length, 3);
  assert.equal((await httpRequest(adminPort, 'GET', '/ready')).status, 503, 'not ready while the backend is down');
  assert.equal((await httpRequest(adminPort, 'GET', '/health')).status, 200, 'but alive');
  run.child.kill('SIGTERM');
  const exit = await Promise.race([run.exited, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
  assert.deepEqual(exit, { code: 0, signal: null }, `exit 0 on SIGTERM (stderr: ${run.stderr})`);
});

/** A hook module file in `dir` (plain ESM, loaded by path like any third-party module). */
function hookFile(dir: string, name: string, body: string): string {
  writeFileSync(path.join(dir, `${name}.mjs`), body.replaceAll('API', JSON.stringify(HOOK_API_VERSION)));
  return `./${name}.mjs`;
}

test('hook modules that hang or are misspelt: check and run exit 1 with one line naming the module, never 0', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const cases: { name: string; module: string; expect: RegExp }[] = [
    {
      name: 'a top-level await that never settles',
      module: hookFile(dir, 'tla', 'await new Promise(() => {});\nexport default { apiVersion: API, name: "tla" };\n'),
      expect: /^hook module \.\/tla\.mjs: import did not finish within 1000 ms/,
    },
    {
      name: 'a top-level await on a long timer',
      module: hookFile(dir, 'timer', 'await new Promise((r) => setTimeout(r, 1e9));\nexport default { apiVersion: API, name: "timer" };\n'),
      expect: /^hook module \.\/timer\.mjs: import did not finish within 1000 ms/,
    },
    {
      name: 'an init() that never settles',
      module: hookFile(dir, 'init', 'export default { apiVersion: API, name: "init", init: () => new Promise(() => {}) };\n'),
      expect: /^hook module \.\/init\.mjs: init\(\) failed: init\.init\(\) did not finish within 1000 ms/,
    },
    {
      name: 'a misspelt onMessage',
      module: hookFile(dir, 'typo', 'export default { apiVersion: API, name: "typo", wants: { inbound: ["ping"] }, onMesage() {} };\n'),
      expect: /^hook module \.\/typo\.mjs: hook "typo": the default export has unknown key onMesage \(did you mean onMessage\?\)/,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const file = path.join(dir, `${c.module.slice(2, -4)}.yaml`);
      writeFileSync(file, ['network: regtest', 'backend: 127.0.0.1:1', 'listen: 127.0.0.1:0', 'metrics: false', 'limits: { hookLoadTimeout: 1s }', 'hooks:', `  - module: ${c.module}`].join('\n'));
      for (const command of ['check', 'run']) {
        const r = cli([command, '--config', file]);
        assert.equal(r.status, 1, `${command}: exit 1 (stdout: ${r.stdout}, stderr: ${r.stderr})`);
        assert.match(r.stderr, c.expect, command);
        assert.equal(r.stderr.trim().split('\n').length, 1, `${command}: one line: ${r.stderr}`);
      }
    });
  }
  await t.test('a close() that never settles: check gives it hookTimeout, then exits 1 naming the module', () => {
    const file = path.join(dir, 'close.yaml');
    const module = hookFile(dir, 'close', 'export default { apiVersion: API, name: "close", close: () => new Promise(() => {}) };\n');
    writeFileSync(file, ['network: regtest', 'backend: 127.0.0.1:1', 'limits: { hookTimeout: 500ms }', 'hooks:', `  - module: ${module}`].join('\n'));
    const r = cli(['check', '--config', file]);
    assert.equal(r.status, 1, `exit 1, not 0 (stdout: ${r.stdout}, stderr: ${r.stderr})`);
    assert.equal(r.stderr, 'hook module ./close.mjs: hook "close": close() did not settle within its budget of 500 ms\n');
    assert.equal(r.stdout, '', 'not reported valid');
  });
});

test('run: a port already taken names the setting in one line; --debug adds the stack', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  t.after(() => taken.close());
  const busy = (taken.address() as net.AddressInfo).port;
  const file = path.join(dir, 'busy.yaml');
  writeFileSync(file, ['network: regtest', 'backend: 127.0.0.1:1', `listen: 127.0.0.1:${await freePort()}`, `metrics: { listen: "127.0.0.1:${busy}" }`].join('\n'));
  const r = cli(['run', '--config', file]);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, `metrics.listen 127.0.0.1:${busy}: cannot listen: address already in use (another process listens there) (EADDRINUSE)\n`);
  const debug = cli(['run', '--config', file, '--debug']);
  assert.equal(debug.status, 1);
  assert.ok(debug.stderr.startsWith(r.stderr.trimEnd()), debug.stderr);
  assert.match(debug.stderr, /\n\s+at /, 'the stack with --debug');
  // the peers' listener taken: named as `listen`
  writeFileSync(file, ['network: regtest', 'backend: 127.0.0.1:1', `listen: 127.0.0.1:${busy}`, 'metrics: false'].join('\n'));
  const peers = cli(['run', '--config', file]);
  assert.equal(peers.status, 1);
  assert.match(peers.stderr, new RegExp(`^listen 127\\.0\\.0\\.1:${busy}: cannot listen: address already in use`));
  assert.doesNotMatch(peers.stderr, /\n\s+at /);
});

test('an admin API on a non-loopback address: check warns, run logs a loud warning and serves', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const [port, adminPort] = [await freePort(), await freePort('0.0.0.0')];
  const file = path.join(dir, 'exposed.yaml');
  writeFileSync(file, ['network: regtest', 'backend: 127.0.0.1:1', `listen: 127.0.0.1:${port}`, 'metrics: false', `admin: { listen: "0.0.0.0:${adminPort}", token: "${ADMIN_TOKEN}" }`].join('\n'));
  const checked = cli(['check', '--config', file]);
  assert.equal(checked.status, 0, checked.stderr);
  assert.match(checked.stderr, new RegExp(`^warning: admin\\.listen 0\\.0\\.0\\.0:${adminPort} is not a loopback address`));
  const run = new RunningCli(file);
  t.after(() => run.kill());
  const warning = await run.waitForLog((l) => l.level === 40 && /admin\.listen/.test(String(l.msg)), 'the admin warning');
  assert.match(String(warning.msg), /^WARNING: admin\.listen 0\.0\.0\.0:\d+ is not a loopback address/);
  assert.equal((await httpRequest(adminPort, 'GET', '/health')).status, 200, 'and it serves');
  // on loopback: no warning
  writeFileSync(file, ['network: regtest', 'backend: 127.0.0.1:1', 'metrics: false', `admin: { listen: "127.0.0.1:${adminPort}", token: "${ADMIN_TOKEN}" }`].join('\n'));
  assert.doesNotMatch(cli(['check', '--config', file]).stderr, /warning/);
});

test('an outbound SOCKS front on a non-loopback address (no authentication; it connects and buys for whoever reaches it): check warns, run logs a loud warning', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const [port, socksPort] = [await freePort(), await freePort('0.0.0.0')];
  const file = path.join(dir, 'open-socks.yaml');
  const write = (socks: string) => writeFileSync(file, ['network: regtest', 'backend: 127.0.0.1:1', `listen: 127.0.0.1:${port}`, 'metrics: false', `outbound: { socks: { listen: "${socks}" }, wallet: "${path.join(dir, 'wallet.json')}" }`].join('\n'));
  write(`0.0.0.0:${socksPort}`);
  const checked = cli(['check', '--config', file]);
  assert.equal(checked.status, 0, checked.stderr);
  assert.match(checked.stderr, new RegExp(`^warning: outbound\\.socks\\.listen 0\\.0\\.0\\.0:${socksPort} is not a loopback address`));
  const run = new RunningCli(file);
  t.after(() => run.kill());
  const warning = await run.waitForLog((l) => l.level === 40 && /outbound\.socks\.listen/.test(String(l.msg)), 'the SOCKS warning');
  assert.match(String(warning.msg), /^WARNING: outbound\.socks\.listen 0\.0\.0\.0:\d+ is not a loopback address/);
  // on loopback: no warning
  write(`127.0.0.1:${socksPort}`);
  assert.doesNotMatch(cli(['check', '--config', file]).stderr, /warning/);
});

test('check fails as run would: a ban file that is torn or of an unknown format, one line each, the file untouched', (t) => {
  const dir = tempDir(t);
  const bans = path.join(dir, 'bans.json');
  const file = path.join(dir, 'proxy.yaml');
  writeFileSync(file, ['network: regtest', 'backend: 127.0.0.1:18444', `listen: 127.0.0.1:0`, 'metrics: false', `bans: { file: "${bans}" }`].join('\n'));
  for (const [text, message] of [
    ['{"version": 1, "bans": [', /^ban file .*bans\.json is not valid JSON/],
    ['{"version": 2, "bans": []}', /^ban file .*bans\.json has an unknown format/],
  ] as const) {
    writeFileSync(bans, text);
    const checked = cli(['check', '--config', file]);
    assert.equal(checked.status, 1, `check exits 1 (stdout: ${checked.stdout})`);
    assert.match(checked.stderr, message);
    assert.equal(checked.stderr.trim().split('\n').length, 1, `one line: ${checked.stderr}`);
    const run = cli(['run', '--config', file]);
    assert.deepEqual([run.status, run.stderr], [1, checked.stderr], '`run` says exactly what `check` says');
    assert.equal(readFileSync(bans, 'utf8'), text, 'the ban file is left as it was');
  }
});

test('check fails as run would: an unwritable ban file, and a hook metric named like one of the proxy\'s', (t) => {
  const dir = tempDir(t);
  // a regular file where the ban file's directory should be: ENOTDIR even as root
  writeFileSync(path.join(dir, 'not-a-dir'), 'x');
  const bans = path.join(dir, 'bans.yaml');
  writeFileSync(bans, ['network: regtest', 'backend: 127.0.0.1:18444', `bans: { file: "${path.join(dir, 'not-a-dir', 'bans.json')}" }`].join('\n'));
  const r1 = cli(['check', '--config', bans]);
  assert.equal(r1.status, 1, r1.stdout);
  assert.match(r1.stderr.trim(), /^bans\.file .*not-a-dir\/bans\.json is not writable: .*ENOTDIR/);
  assert.equal(r1.stderr.trim().split('\n').length, 1, 'one line, no stack');

  const hook = hookFile(dir, 'clash.mjs', `export default { apiVersion: '${HOOK_API_VERSION}', name: 'clash', init(_o, ctx) { ctx.metrics.counter('errors_total', 'clashes with bhp_hook_errors_total'); } };`);
  const clash = path.join(dir, 'clash.yaml');
  writeFileSync(clash, ['network: regtest', 'backend: 127.0.0.1:18444', 'hooks:', `  - module: ${JSON.stringify(hook)}`].join('\n'));
  const r2 = cli(['check', '--config', clash]);
  assert.equal(r2.status, 1, r2.stdout);
  assert.match(r2.stderr, /errors_total/);
  assert.doesNotMatch(r2.stderr, /\n\s+at /, 'no stack trace');
});
