/** Start the real proxy (config → startProxy) on free loopback ports for a test. */
import { Writable } from 'node:stream';
import * as net from 'node:net';
import { pino } from 'pino';
import { startProxy, type RunningProxy } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { freePort } from './ports.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface TestProxy extends RunningProxy {
  host: string;
  port: number;
  /** structured log lines the proxy wrote (captured, not printed) */
  logs: LogLine[];
  /** bytes of log the proxy wrote so far (what a log file would grow by) */
  logBytes(): number;
  adminToken: string;
  adminPort: number | null;
  metricsPort: number | null;
  /** GET /metrics text from the registry (no HTTP) */
  metricsText(): Promise<string>;
  /** value of one sample, e.g. metricValue('bhp_connections_refused_total', {reason: 'banned'}) */
  metricValue(name: string, labels?: Record<string, string>): Promise<number>;
}

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

/**
 * `yaml` is merged under a generated header (network regtest, listen on a free port,
 * backend as given): pass only the keys a test cares about, e.g. "limits: { maxPeersPerAddress: 2 }".
 */
export async function startTestProxy(backendPort: number, yaml = '', opts: { metrics?: boolean; admin?: boolean; network?: string; probeBackend?: boolean } = {}): Promise<TestProxy> {
  const port = await freePort();
  const metricsPort = opts.metrics ? await freePort() : null;
  const adminPort = opts.admin ? await freePort() : null;
  const lines = [
    // a custom magic (8 hex digits) also needs a port
    opts.network ? `network: "${opts.network}"\nport: ${port}` : 'network: regtest',
    `listen: ["127.0.0.1:${port}"]`,
    `backend: 127.0.0.1:${backendPort}`,
    metricsPort ? `metrics: { listen: "127.0.0.1:${metricsPort}" }` : 'metrics: false',
    adminPort ? `admin: { listen: "127.0.0.1:${adminPort}", token: "${ADMIN_TOKEN}" }` : '',
    yaml,
  ];
  const config = parseConfig(lines.filter(Boolean).join('\n'), 'test.yaml');
  const logs: LogLine[] = [];
  let logBytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logBytes += chunk.length;
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  const log = pino({ level: process.env.BHP_TEST_LOG ?? 'debug' }, sink);
  // no start-up probe unless asked: tests that count backend connections see only their peers'
  const running = await startProxy(config, { log, defaultMetrics: false, probeBackend: opts.probeBackend ?? false });
  return Object.assign(running, {
    host: '127.0.0.1',
    port,
    logs,
    logBytes: () => logBytes,
    adminToken: ADMIN_TOKEN,
    adminPort,
    metricsPort,
    metricsText: () => running.metrics.registry.metrics(),
    async metricValue(name: string, labels: Record<string, string> = {}) {
      const m = await running.metrics.registry.getSingleMetric(name)?.get();
      if (!m) return 0;
      let sum = 0;
      for (const v of m.values) {
        const metricName = (v as { metricName?: string }).metricName;
        if (metricName && metricName !== name) continue;
        if (Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val)) sum += v.value;
      }
      return sum;
    },
  });
}

/** Open a raw TCP connection and wait until it is connected. */
export function connectRaw(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Resolves when the socket is closed by the other side (or errors), with what it received. */
export function collectUntilClosed(s: net.Socket): Promise<{ data: Buffer; error: Error | null }> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => {
    let error: Error | null = null;
    s.on('error', (e) => (error = e));
    s.on('close', () => resolve({ data: Buffer.concat(chunks), error }));
  });
}
