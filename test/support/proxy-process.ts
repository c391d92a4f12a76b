/**
 * The built CLI (`node dist/src/cli.js run --config FILE`) as a child process on free loopback
 * ports, with its admin API and metrics: for tests where several proxies must be separate
 * processes (a fleet sharing Redis, workers, a load balancer in front).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { httpRequest } from './p2p-client.js';
import { freePort } from './ports.js';
import { ADMIN_TOKEN } from './proxy-harness.js';
import { waitFor } from './wait.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

export interface ProxyProcess {
  proc: ChildProcess;
  port: number;
  adminPort: number;
  metricsPort: number;
  dir: string;
  /** what the process wrote (pino JSON lines on stdout, errors on stderr), last 200 kB */
  output(): string;
  /** authenticated admin request */
  admin(method: string, route: string, body?: unknown): ReturnType<typeof httpRequest>;
  /** SIGTERM and wait for the exit (SIGKILL after 20 s) */
  stop(): Promise<void>;
}

/** `yaml` is added under the generated network/listen/backend/admin/metrics keys. */
export async function startProxyProcess(backendPort: number, yaml = '', options: {
    port?: number;
    waitReady?: boolean;
    /** more keys of `bans:`, e.g. "threshold: 10" */
    bans?: string;
    /** node options before the script, e.g. ['--import', hookUrl] */
    execArgv?: string[];
    env?: NodeJS.ProcessEnv;
  } = {},): Promise<ProxyProcess> {
  const [port, adminPort, metricsPort] = [options.port ?? (await freePort()), await freePort(), await freePort()];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-proc-'));
  const config = path.join(dir, 'proxy.yaml');
  writeFileSync(
    config,
    [
      'network: regtest',
      `listen: ["127.0.0.1:${port}"]`,
      `backend: 127.0.0.1:${backendPort}`,
      `metrics: { listen: "127.0.0.1:${metricsPort}" }`,
      `admin: { listen: "127.0.0.1:${adminPort}", token: "${ADMIN_TOKEN}" }`,
      `bans: { file: ${JSON.stringify(path.join(dir, 'bans.json'))}${options.bans ? `, ${options.bans}` : ''} }`,
      'log: { level: debug }',
      yaml,
    ].join('\n'),
  );
  const proc = spawn(process.execPath, [...(options.execArgv ?? []), CLI, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  process.once('exit', () => proc.kill('SIGKILL'));
  let out = '';
  const keep = (c: Buffer) => (out = (out + c.toString()).slice(-200_000));
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const p: ProxyProcess = {
    proc,
    port,
    adminPort,
    metricsPort,
    dir,
    output: () => out,
    admin: (method, route, body) => httpRequest(adminPort, method, route, { token: ADMIN_TOKEN, body }),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
    },
  };
  const what = options.waitReady === false ? '/health' : '/ready';
  try {
    await waitFor(async () => proc.exitCode === null && (await httpRequest(adminPort, 'GET', what)).status === 200, 60_000, `proxy process ${what}`);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; its output: ${out.slice(-2000)}`);
  }
  return p;
}
