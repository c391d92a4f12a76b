import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as os from 'node:os';
import { startProxy } from './app.js';
import { waitForShutdown } from './lifecycle.js';
import { parseConfig } from './config.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type BcoinModule = any;

/**
 * `bitcoin-hook-proxy demo`: the proxy doing its job on a machine with no bitcoind. A bcoin
 * regtest full node (a Bitcoin node in JavaScript, from the npm registry) runs in-process on
 * loopback as the backend; the proxy listens in front of it on the regtest port.
 */
export async function runDemo(opts: { port?: number | undefined }): Promise<number> {
  let bcoin: BcoinModule;
  try {
    bcoin = createRequire(import.meta.url)('bcoin');
  } catch {
    console.error('demo needs the bcoin package (a devDependency): run `npm install` in the project first,\nor put the proxy in front of your own node with `bitcoin-hook-proxy run --config FILE`.');
    return 1;
  }
  bcoin.set('regtest');
  const backendPort = 18544;
  const node = new bcoin.FullNode({ network: 'regtest', memory: true, listen: true, host: '127.0.0.1', port: backendPort, logLevel: 'none', workers: false });
  await node.open();
  await node.connect();
  const address = bcoin.KeyRing.generate().getAddress();
  const mine = async (n: number) => {
    for (let i = 0; i < n; i++) await node.chain.add(await node.miner.mineBlock(node.chain.tip, address));
  };
  await mine(10);

  const port = opts.port ?? 18444;
  const token = randomBytes(16).toString('hex');
  const config = parseConfig(
    [
      'network: regtest',
      `listen: ["127.0.0.1:${port}"]`,
      `backend: 127.0.0.1:${backendPort}`,
      `bans: { file: ${JSON.stringify(path.join(os.tmpdir(), 'bitcoin-hook-proxy-demo-bans.json'))} }`,
      'metrics: { listen: 127.0.0.1:9333 }',
      `admin: { listen: 127.0.0.1:9334, token: "${token}" }`,
    ].join('\n'),
    'demo.yaml',
  );
  const running = await startProxy(config);
  const timer = setInterval(() => void mine(1).catch(() => {}), 30_000);
  console.error(
    [
      '',
      `bitcoin-hook-proxy demo: regtest bcoin node (height ${node.chain.height}) on 127.0.0.1:${backendPort}, proxy on 127.0.0.1:${port}`,
      `  connect a node:   bitcoind -regtest -connect=127.0.0.1:${port}   (or litecoind -regtest, same P2P code and magic)`,
      '  metrics:          curl -s 127.0.0.1:9333/metrics | grep ^bhp_',
      `  peers:            curl -s -H 'Authorization: Bearer ${token}' 127.0.0.1:9334/peers`,
      '  a block is mined every 30 s; Ctrl-C stops.',
      '',
    ].join('\n'),
  );
  return waitForShutdown(running, async () => {
    clearInterval(timer);
    await node.close();
  });
}
