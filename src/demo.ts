import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as path from 'node:path';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { startProxy } from './app.js';
import { trapShutdown } from './lifecycle.js';
import { parseConfig } from './config.js';
import { createLogger, type LogFormat } from './logging.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type BcoinModule = any;

/** Ports the demo prefers; each one that is taken falls back to a port the OS picks. */
export const DEMO_PORTS = { proxy: 18444, metrics: 9333, admin: 9334 } as const;

const shipped = (hook: string) => JSON.stringify(fileURLToPath(new URL(`../hooks/${hook}`, import.meta.url)));

/**
 * The demo's hook chain: discovery, paid access on the dev Lightning backend (real BOLT11
 * invoices signed with a local key, paid through the admin API: no Lightning node, no money),
 * and rate limits per tier so that paying shows. The credential key is generated into `dir`.
 */
function demoHooks(dir: string): string[] {
  const keys = path.join(dir, 'paywall.keys');
  writeFileSync(keys, `1 ${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  const paywall = {
    backend: { kind: 'dev' },
    store: { file: path.join(dir, 'paywall.json') },
    keys: { file: keys },
    passes: { pro: { priceSats: 2000, duration: '24h' } },
    credit: { tier: 'metered', minSats: 100, maxSats: 100_000, msatPerUnit: 1000, freeBytes: 1 << 20 },
    paidOnly: ['mempool'],
  };
  const rateLimit = {
    tiers: {
      default: { peer: { ping: { rate: 0.2, burst: 5 }, getdata: { rate: 20, burst: 200 } } },
      pro: { peer: { ping: { rate: 10, burst: 100 }, getdata: { rate: 500, burst: 5000 } } },
      metered: { peer: { ping: { rate: 10, burst: 100 }, getdata: { rate: 500, burst: 5000 } } },
    },
  };
  return [
    'hooks:',
    `  - { module: ${shipped('features.js')} }`,
    `  - { module: ${shipped('paywall/index.js')}, options: ${JSON.stringify(paywall)} }`,
    `  - { module: ${shipped('rate-limit.js')}, options: ${JSON.stringify(rateLimit)} }`,
  ];
}

/** `port` if it can be bound on 127.0.0.1 now (0: one the OS picks), else null. */
function bindable(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(null));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const got = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(got));
    });
  });
}

const portOf = (server: { address(): unknown } | null) => (server?.address() as net.AddressInfo | null)?.port;

/**
 * `bitcoin-hook-proxy demo`: the proxy doing its job on a machine with no bitcoind. A bcoin
 * regtest full node (a Bitcoin node in JavaScript, from the npm registry) runs in-process on
 * loopback as the backend; the proxy listens in front of it on the regtest port (or `--port`).
 */
export async function runDemo(opts: { port?: number | undefined; logFormat?: LogFormat }): Promise<number> {
  if (opts.port !== undefined && !(Number.isInteger(opts.port) && opts.port >= 1 && opts.port <= 65535)) {
    console.error('demo --port needs a TCP port number from 1 to 65535');
    return 2;
  }
  let bcoin: BcoinModule;
  try {
    bcoin = createRequire(import.meta.url)('bcoin');
  } catch {
    // installed from npm there are no devDependencies, and bcoin's own leveldown 4 fails to build on Node 20+
    console.error(
      [
        'demo needs the bcoin package, a devDependency of bitcoin-hook-proxy:',
        '  in a clone of the project: npm install',
        '  where bitcoin-hook-proxy was installed from npm: npm install bcoin, with',
        '    "overrides": { "leveldown": "6.1.1" } in that package.json (the leveldown bcoin names does not build on Node 20+)',
        'or put the proxy in front of your own node with `bitcoin-hook-proxy run --config FILE`.',
      ].join('\n'),
    );
    return 1;
  }
  // from here on a Ctrl-C stops the demo gracefully once it is up (bcoin's node, the temp dir), not mid-start
  const shutdown = trapShutdown();
  // An explicit --port must be the one used; the defaults step aside when something holds them.
  const port = opts.port ?? (await bindable(DEMO_PORTS.proxy)) ?? 0;
  const metricsPort = (await bindable(DEMO_PORTS.metrics)) ?? 0;
  const adminPort = (await bindable(DEMO_PORTS.admin)) ?? 0;
  const backendPort = (await bindable(0))!;
  // bcoin's own HTTP API would take its fixed regtest port (48332): two demos could not run at once
  const httpPort = (await bindable(0))!;

  bcoin.set('regtest');
  const node = new bcoin.FullNode({ network: 'regtest', memory: true, listen: true, host: '127.0.0.1', port: backendPort, httpHost: '127.0.0.1', httpPort, logLevel: 'none', workers: false });
  // bcoin says protocol 70015, below the 70016 the proxy raises to 70017 for BIP 434 (x-protocol.md
  // §2.3), so a client following §7 would never announce the x: feature and the paywall could not
  // be reached. bcoin ignores unknown messages at any time, which is all 70016 promises of feature.
  node.pool.options.version = 70016;
  await node.open();
  await node.connect();
  const address = bcoin.KeyRing.generate().getAddress();
  const mine = async (n: number) => {
    for (let i = 0; i < n; i++) await node.chain.add(await node.miner.mineBlock(node.chain.tip, address));
  };
  await mine(10);

  const token = randomBytes(16).toString('hex');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bitcoin-hook-proxy-demo-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  let running;
  try {
    const config = parseConfig(
      [
        'network: regtest',
        `listen: ["127.0.0.1:${port}"]`,
        `backend: 127.0.0.1:${backendPort}`,
        'limits: { reservedPeers: 4 }',
        `bans: { file: ${JSON.stringify(path.join(os.tmpdir(), 'bitcoin-hook-proxy-demo-bans.json'))} }`,
        `metrics: { listen: "127.0.0.1:${metricsPort}" }`,
        `admin: { listen: "127.0.0.1:${adminPort}", token: "${token}" }`,
        ...demoHooks(dir),
      ].join('\n'),
      'demo.yaml',
    );
    running = await startProxy(config, { log: createLogger('info', undefined, opts.logFormat) });
  } catch (err) {
    await node.close();
    cleanup();
    // the one port the demo does not step aside from is an explicit --port
    const e = err as NodeJS.ErrnoException & { port?: number };
    if (e.code === 'EADDRINUSE' && opts.port !== undefined && e.port === port) throw new Error(`demo --port ${port}: cannot listen: address already in use (another process listens there; choose another port, or leave --port out to use ${DEMO_PORTS.proxy} or a free one)`);
    throw err;
  }
  const proxyPort = running.proxy.addresses()[0]?.port ?? port;
  const m = portOf(running.metricsServer);
  const a = portOf(running.adminServer);
  const timer = setInterval(() => void mine(1).catch(() => {}), 30_000);
  console.error(
    [
      '',
      `bitcoin-hook-proxy demo: regtest bcoin node (height ${node.chain.height}) on 127.0.0.1:${backendPort}, proxy on 127.0.0.1:${proxyPort}`,
      `  connect a node:   bitcoind -regtest -connect=127.0.0.1:${proxyPort}`,
      `               or:  bcoin --network=regtest --only=127.0.0.1:${proxyPort}`,
      '    (a Bitcoin regtest node syncs this chain; litecoind speaks the same P2P protocol and completes',
      "     the handshake but cannot sync it: Litecoin's regtest genesis block and proof of work differ)",
      `  metrics:          curl -s 127.0.0.1:${m}/metrics | grep ^bhp_`,
      `  readiness:        curl -s 127.0.0.1:${m}/ready`,
      `  peers:            BHP_ADMIN_TOKEN=${token} npx bitcoin-hook-proxy peers --admin 127.0.0.1:${a}`,
      '  paid access (hook paywall, dev Lightning backend: real BOLT11 invoices, no Lightning node, no money):',
      "    offers:         a 'pro' pass (2,000 sat for 24 h: higher rate limits, mempool) and metered credit,",
      '                    over the x: protocol (docs/x-protocol.md §4.3: x:offers, x:invoice, x:claim)',
      `    pay an invoice: curl -s -H 'Authorization: Bearer ${token}' -d '{"bolt11":"lnbcrt..."}' 127.0.0.1:${a}/hooks/paywall/settle`,
      '                    (answers the preimage a payer learns; claim with it to get the tier)',
      `    grants:         curl -s -H 'Authorization: Bearer ${token}' 127.0.0.1:${a}/hooks/paywall/grants`,
      '  a block is mined every 30 s; Ctrl-C stops.',
      '',
    ].join('\n'),
  );
  return shutdown.until(running, async () => {
    clearInterval(timer);
    await node.close();
    cleanup();
  });
}
