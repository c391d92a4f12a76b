/**
 * A proxy under benchmark, in its own process so its memory can be read from /proc:
 *   node dist/bench/proxy-process.js raw <backendPort>            a plain socket.pipe proxy
 *   node dist/bench/proxy-process.js workers <backendPort> <N> <port>     bitcoin-hook-proxy with `workers: N` (node:cluster)
 *   node dist/bench/proxy-process.js bhp <backendPort> <hooks> [always]   bitcoin-hook-proxy with N pass-through hooks
 *                                          (`always`: checksum policy always, so every frame is stored whole first)
 * Prints "READY <port>" once listening.
 */
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startProxy } from '../src/app.js';
import { loadConfig, parseConfig } from '../src/config.js';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [mode, backendArg, hooksArg, checksumArg] = process.argv.slice(2);

// "mem" on stdin: collect garbage, then report resident memory; "cpu": CPU time used so far (µs)
process.stdin.on('data', (d: Buffer) => {
  if (d.toString().includes('cpu')) {
    const u = process.cpuUsage();
    console.log(`CPU ${u.user + u.system}`);
    return;
  }
  if (!d.toString().includes('mem')) return;
  (globalThis as { gc?: () => void }).gc?.();
  setTimeout(() => console.log(`MEM ${process.memoryUsage().rss}`), 50);
});
const backendPort = Number(backendArg);

if (mode === 'workers') {
  // the primary and each worker run this script; the config file is written once by the primary
  const { isWorker, runPrimary, runWorker } = await import('../src/workers.js');
  const file = path.join(os.tmpdir(), `bhp-bench-workers-${checksumArg}.yaml`);
  if (isWorker()) {
    await runWorker(file);
  } else {
    const yaml = [
      'network: regtest',
      `listen: 127.0.0.1:${checksumArg}`,
      `backend: 127.0.0.1:${backendPort}`,
      'metrics: false',
      'log: { level: warn }',
      `workers: ${hooksArg}`,
      'limits: { maxPeers: 5000, maxPeersPerAddress: 5000, maxPeersPerSubnet: 5000, idleTimeout: 1h, handshakeTimeout: 1h, connectionRate: { perAddress: { burst: 0 }, perSubnet: { burst: 0 } } }',
    ].join('\n');
    writeFileSync(file, yaml);
    void runPrimary(loadConfig(file), file).then((code) => process.exit(code)); // stdin keeps it alive otherwise
    // READY once a worker accepts
    for (;;) {
      const ok = await new Promise<boolean>((r) => {
        const s = net.connect({ host: '127.0.0.1', port: Number(checksumArg) }, () => (s.destroy(), r(true)));
        s.once('error', () => r(false));
      });
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1000)); // let every worker come up
    console.log(`READY ${checksumArg}`);
  }
} else if (mode === 'raw') {
  const server = net.createServer((c) => {
    const b = net.connect({ host: '127.0.0.1', port: backendPort });
    c.setNoDelay(true);
    b.setNoDelay(true);
    c.pipe(b);
    b.pipe(c);
    c.on('error', () => b.destroy());
    b.on('error', () => c.destroy());
    c.on('close', () => b.destroy());
    b.on('close', () => c.destroy());
  });
  server.listen(0, '127.0.0.1', () => console.log(`READY ${(server.address() as net.AddressInfo).port}`));
} else {
  const hookPath = fileURLToPath(new URL('./fixtures/pass-hook.js', import.meta.url));
  const hooks = Number(hooksArg ?? 0);
  const yaml = [
    'network: regtest',
    'listen: 127.0.0.1:0',
    `backend: 127.0.0.1:${backendPort}`,
    'metrics: false',
    checksumArg === 'always' ? 'checksum: always' : '',
    'limits: { maxPeers: 5000, maxPeersPerAddress: 5000, maxPeersPerSubnet: 5000, idleTimeout: 1h, handshakeTimeout: 1h, connectionRate: { perAddress: { burst: 0 }, perSubnet: { burst: 0 } } }',
    hooks > 0 ? `hooks:\n${Array.from({ length: hooks }, () => `  - module: ${JSON.stringify(hookPath)}`).join('\n')}` : '',
  ].join('\n');
  const running = await startProxy(parseConfig(yaml, 'bench.yaml'), { log: pino({ level: 'silent' }), defaultMetrics: false });
  console.log(`READY ${running.proxy.addresses()[0]!.port}`);
}
