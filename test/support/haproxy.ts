/**
 * Debian's haproxy in TCP mode in front of test proxies, sending a PROXY protocol header
 * (`send-proxy` v1 or `send-proxy-v2`) on every connection it forwards, round robin.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { P2PClient } from './p2p-client.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export const haproxyMissing: string | false = spawnSync('haproxy', ['-v']).status === 0 ? false : 'haproxy is not installed (Debian package haproxy; .ci/run installs it)';

export interface Haproxy {
  port: number;
  /** what haproxy wrote so far */
  log(): string;
  stop(): Promise<void>;
}

export async function startHaproxy(serverPorts: number[], sendProxy: 'send-proxy' | 'send-proxy-v2' = 'send-proxy-v2'): Promise<Haproxy> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'bhp-haproxy-'));
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 200',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      'frontend p2p',
      `  bind 127.0.0.1:${port}`,
      '  default_backend proxies',
      'backend proxies',
      '  balance roundrobin',
      ...serverPorts.map((p, i) => `  server p${i} 127.0.0.1:${p} ${sendProxy}`),
      '',
    ].join('\n'),
  );
  let log = '';
  const child = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  child.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    process.off('exit', kill);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        const c = await P2PClient.connect(port, { localAddress: '127.0.4.2' });
        await c.close();
        return true;
      },
      20_000,
      `haproxy listening (log: ${log})`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, log: () => log, stop };
}
