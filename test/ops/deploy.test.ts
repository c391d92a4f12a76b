/**
 * What deploy/ promises, checked where it can be here: the compose file's services and the
 * files it mounts, the Dockerfile's stages, user, init and healthcheck, the image's entrypoint
 * and default command run with the built CLI (the HEALTHCHECK command against the proxy it
 * starts), the systemd unit's exposure score, bitcoin.conf's ports and sections.
 *
 * Real implementations: the built CLI, a bcoin 1.0.2 regtest node (npm) as the backend for
 * the entrypoint run, systemd-analyze (Debian's systemd) and promtool (Debian's prometheus)
 * where installed. Containers cannot run on this machine (see deploy/README.md), so the image
 * itself is not built here.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { bcoinAvailable, startBcoin } from '../support/bcoin-node.js';
import { P2PClient } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEPLOY = path.join(ROOT, 'deploy');
const read = (p: string) => readFileSync(path.join(ROOT, p), 'utf8');
const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function dockerfile(): Instruction[] {
  return read('deploy/Dockerfile')
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'))
    .map((l) => {
      const m = /^\s*([A-Z]+)\s+(.*)$/.exec(l);
      assert.ok(m, `a Dockerfile instruction: ${l}`);
      return { op: m[1]!, args: m[2]!.trim() };
    });
}

/** The final stage's instructions. */
function finalStage(ins: Instruction[]): Instruction[] {
  const from = ins.map((i, n) => (i.op === 'FROM' ? n : -1)).filter((n) => n >= 0);
  return ins.slice(from.at(-1));
}

test('compose.yaml: bitcoind, the proxy in its network namespace, Prometheus with the rules, Grafana with the dashboard', () => {
  const compose = parseYaml(read('deploy/compose.yaml')) as { services: Record<string, Record<string, unknown>>; volumes: Record<string, unknown> };
  assert.deepEqual(Object.keys(compose.services).sort(), ['bitcoind', 'grafana', 'prometheus', 'proxy']);
  const { bitcoind, proxy, prometheus, grafana } = compose.services as Record<string, Record<string, any>>;
  assert.equal(proxy!.network_mode, 'service:bitcoind', 'bitcoind must see proxied peers as 127.0.0.1');
  assert.equal(proxy!.build.dockerfile, 'deploy/Dockerfile');
  assert.ok(existsSync(path.resolve(DEPLOY, proxy!.build.context, proxy!.build.dockerfile)));
  assert.ok((bitcoind!.command as string[]).includes('-bind=127.0.0.1:8433'));
  assert.ok(!(bitcoind!.command as string[]).some((a) => a.includes('8334')));
  assert.deepEqual(bitcoind!.ports, ['8333:8333']);
  assert.equal(proxy!.read_only, true);
  assert.deepEqual(proxy!.cap_drop, ['ALL']);
  // every file the services mount exists, relative to the compose file
  const mounts = Object.values(compose.services).flatMap((s) => ((s.volumes as string[] | undefined) ?? []).filter((v) => v.startsWith('.')));
  assert.equal(mounts.length, 5, mounts.join(', '));
  for (const m of mounts) assert.ok(existsSync(path.resolve(DEPLOY, m.split(':')[0]!)), `mounted file ${m}`);
  const mountOf = (s: Record<string, any>, target: string) => (s.volumes as string[]).find((v) => v.split(':')[1] === target)?.split(':')[0];
  assert.equal(mountOf(prometheus!, '/etc/prometheus/alerts.yml'), './prometheus/alerts.yml');
  assert.equal(mountOf(grafana!, '/etc/grafana/dashboards/bitcoin-hook-proxy.json'), './grafana/bitcoin-hook-proxy.json');
  assert.equal(mountOf(proxy!, '/etc/bitcoin-hook-proxy/proxy.yaml'), './compose/proxy.yaml');
  // Grafana's provisioning points at the mounted dashboard and at the prometheus service
  const dashboards = parseYaml(read('deploy/grafana/provisioning/dashboards/bitcoin-hook-proxy.yaml')) as { providers: { options: { path: string } }[] };
  assert.equal(dashboards.providers[0]!.options.path, '/etc/grafana/dashboards');
  const datasources = parseYaml(read('deploy/grafana/provisioning/datasources/prometheus.yaml')) as { datasources: { url: string; type: string }[] };
  assert.deepEqual(datasources.datasources.map((d) => [d.type, d.url]), [['prometheus', 'http://prometheus:9090']]);
  // Prometheus scrapes the proxy where it listens: bitcoind's namespace, the metrics port of its config
  const prom = parseYaml(read('deploy/compose/prometheus.yml')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
  const proxyConfig = parseYaml(read('deploy/compose/proxy.yaml')) as { metrics: { listen: string } };
  assert.deepEqual(prom.scrape_configs[0]!.static_configs[0]!.targets, [`bitcoind:${proxyConfig.metrics.listen.split(':')[1]}`]);
});

test('promtool: the compose Prometheus config is valid with the shipped rules', { skip: has('promtool') ? false : 'promtool is not installed (apt-get install prometheus)' }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-compose-prom-'));
  try {
    const file = path.join(dir, 'prometheus.yml');
    writeFileSync(file, read('deploy/compose/prometheus.yml').replace('/etc/prometheus/alerts.yml', path.join(DEPLOY, 'prometheus/alerts.yml')));
    const r = spawnSync('promtool', ['check', 'config', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Dockerfile: multi-stage, not root, tini as init, healthcheck on /ready, sources it copies exist', () => {
  const ins = dockerfile();
  const stages = ins.filter((i) => i.op === 'FROM');
  assert.ok(stages.length >= 2, 'a build stage and a runtime stage');
  const last = finalStage(ins);
  const user = last.filter((i) => i.op === 'USER').at(-1)?.args;
  assert.ok(user && !['root', '0', '0:0'].includes(user), `runtime user ${user}`);
  const entrypoint = JSON.parse(last.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
  assert.deepEqual(entrypoint.slice(0, 2), ['/usr/bin/tini', '--']);
  assert.ok(last.some((i) => i.op === 'RUN' && /apt-get install[^&]*\btini\b/.test(i.args)), 'tini is installed in the runtime stage');
  const health = last.find((i) => i.op === 'HEALTHCHECK')!.args;
  assert.match(health, /\/ready/);
  const runtimeCopies = last.filter((i) => i.op === 'COPY' && !i.args.includes('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
  for (const src of ['src', 'hooks', 'test', 'tsconfig.json']) assert.ok(!runtimeCopies.includes(src), `no ${src} in the runtime stage (compiled output only)`);
  for (const c of ins.filter((i) => i.op === 'COPY' && !i.args.includes('--from'))) {
    for (const src of c.args.split(/\s+/).slice(0, -1)) assert.ok(existsSync(path.join(ROOT, src)), `COPY source ${src}`);
  }
  const ignore = read('.dockerignore').split('\n');
  for (const p of ['node_modules', 'dist']) assert.ok(ignore.includes(p), `.dockerignore keeps ${p} out of the build context`);
});

test("the image's entrypoint and default command, run with the built CLI: the baked config checks, and the HEALTHCHECK turns healthy once bcoin answered", { skip: bcoinAvailable() ? false : 'bcoin not installed', timeout: 90_000 }, async (t) => {
  const last = finalStage(dockerfile());
  const entrypoint = JSON.parse(last.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
  const cmd = JSON.parse(last.find((i) => i.op === 'CMD')!.args) as string[];
  const copied = last.find((i) => i.op === 'COPY' && i.args.endsWith(' /etc/bitcoin-hook-proxy/proxy.yaml'))!.args.split(/\s+/)[0]!;
  // the container's paths, mapped onto this checkout: /app is the package root, the config is the file COPY put there
  const local = (arg: string) => (arg === '/etc/bitcoin-hook-proxy/proxy.yaml' ? path.join(ROOT, copied) : arg.replace(/^\/app\//, ROOT));
  const [node, cli] = entrypoint.slice(2).map(local);
  assert.equal(node, 'node');
  assert.equal(cli, path.join(ROOT, 'dist/src/cli.js'));
  const args = cmd.map(local);
  assert.equal(args[0], 'run');

  const env = { ...process.env, BHP_ADMIN_TOKEN: 'x'.repeat(32) };
  const check = spawnSync(process.execPath, [cli!, 'check', ...args.slice(1)], { encoding: 'utf8', env });
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stdout, /valid \(network mainnet, 1 listener\(s\), backend 127\.0\.0\.1:8433, 1 hook\(s\)\)/);

  // the same command with the container's ports moved to free loopback ones and bcoin as bitcoind
  const backend = await startBcoin({ name: 'entrypoint-backend' });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-entrypoint-'));
  t.after(async () => {
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const metricsPort = await freePort();
  const config = readFileSync(args[2]!, 'utf8')
    .replace('network: mainnet', 'network: regtest')
    .replace('"0.0.0.0:8333"', '"127.0.0.1:0"')
    .replace('"127.0.0.1:8433"', `"127.0.0.1:${backend.port}"`)
    .replace('"0.0.0.0:9333"', `"127.0.0.1:${metricsPort}"`)
    .replace('"127.0.0.1:9334"', `"127.0.0.1:${await freePort()}"`)
    .replace('/var/lib/bitcoin-hook-proxy/bans.json', path.join(dir, 'bans.json'));
  const file = path.join(dir, 'proxy.yaml');
  writeFileSync(file, config);
  const child = spawn(process.execPath, [cli!, args[0]!, args[1]!, file], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  t.after(() => child.kill('SIGKILL'));
  const port = Number((await waitFor(() => /"listen":"127\.0\.0\.1:(\d+)"[^\n]*"msg":"listening for peers"/.exec(out), 30_000, `the proxy to listen (${out})`))[1]);

  // HEALTHCHECK CMD, exactly as the Dockerfile writes it, pointed at this metrics port
  const healthArgs = JSON.parse(/CMD (\[.*\])$/.exec(last.find((i) => i.op === 'HEALTHCHECK')!.args)![1]!) as string[];
  assert.equal(healthArgs[0], 'node');
  const healthcheck = () => spawnSync(process.execPath, healthArgs.slice(1), { env: { ...env, BHP_READY_URL: `http://127.0.0.1:${metricsPort}/ready` }, timeout: 10_000 }).status;
  await waitFor(async () => (await fetch(`http://127.0.0.1:${metricsPort}/health`)).ok, 20_000, 'the metrics listener');
  // the proxy probes bitcoind at start: healthy once bcoin answered, with no peer needed
  await waitFor(() => healthcheck() === 0, 20_000, 'the HEALTHCHECK to pass once the start-up probe reached bcoin');
  const peer = await P2PClient.connect(port);
  await peer.handshake(20_000);
  assert.equal(healthcheck(), 0, 'healthy with a peer served through the proxy');
  await peer.close();
  child.kill('SIGTERM'); // what `docker stop` sends (tini forwards it)
  assert.equal(await exited, 0, out);
});

test('systemd unit: hardened to an exposure of 2.0 or less, state directory and user documented', () => {
  const unit = read('deploy/bitcoin-hook-proxy.service');
  for (const line of ['NoNewPrivileges=true', 'ProtectSystem=strict', 'ProtectHome=true', 'PrivateTmp=true', 'StateDirectory=bitcoin-hook-proxy', 'CapabilityBoundingSet=', 'SystemCallFilter=@system-service', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX']) {
    assert.ok(unit.split('\n').includes(line), `the unit has ${line}`);
  }
  assert.match(unit, /useradd --system [^\n]*bitcoin-hook-proxy/);
  assert.match(unit, /bans: \{ file: \/var\/lib\/bitcoin-hook-proxy\/bans\.json \}/);
});

const analyze = has('systemd-analyze') && spawnSync('systemd-analyze', ['security', '--help'], { encoding: 'utf8' }).stdout.includes('--offline');
test('systemd-analyze security --offline=true scores the unit at 2.0 or less', { skip: analyze ? false : 'systemd-analyze with --offline (systemd 250+) is not installed' }, () => {
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', path.join(DEPLOY, 'bitcoin-hook-proxy.service')], { encoding: 'utf8' });
  const m = /Overall exposure level for [^:]+: (\d+(?:\.\d+)?)/.exec(r.stdout);
  assert.ok(m, r.stdout + r.stderr);
  assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]}`);
});

test('bitcoin.conf: bitcoind on 127.0.0.1:8433 (not the onion target 8334), a section per network, matching the example config', () => {
  const conf = read('deploy/bitcoin.conf');
  const active = conf.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  assert.ok(active.includes('bind=127.0.0.1:8433'));
  assert.ok(!active.some((l) => l.includes(':8334')), 'no active line uses 8334');
  for (const section of ['[test]', '[testnet4]', '[signet]', '[regtest]']) assert.ok(active.includes(section), `section ${section}`);
  // each network's backend port is unique and none is that network's onion default (P2P port + 1)
  const binds = active.filter((l) => l.startsWith('bind='));
  assert.equal(new Set(binds).size, binds.length);
  for (const onion of [8334, 18334, 48334, 38334, 18445]) assert.ok(!binds.some((b) => b.endsWith(`:${onion}`)), `not the onion port ${onion}`);
  const example = parseYaml(read('deploy/proxy.example.yaml')) as { backend: string };
  assert.equal(`bind=${example.backend}`, 'bind=127.0.0.1:8433');
});
