/**
 * Debian's redis-server for tests, on a free port, in a temporary directory, with the append-only
 * file fsynced on every write (as docs/scale-out.md asks for money). kill() is a SIGKILL (an
 * outage); restart() brings it back on the same port with the same data directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export function redisSkipReason(): string | false {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? false : 'redis-server is not installed (Debian package redis-server; .ci/run installs it)';
}

export class RedisServer {
  #proc: ChildProcess | null = null;
  #log = '';
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    const r = new RedisServer(await freePort(), mkdtempSync(path.join(os.tmpdir(), 'bhp-redis-')));
    await r.restart();
    return r;
  }

  async restart(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--protected-mode', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = proc;
    process.once('exit', () => proc.kill('SIGKILL')); // a crashed test leaves no server behind
    proc.stdout!.on('data', (c: Buffer) => (this.#log = (this.#log + c.toString()).slice(-4000)));
    proc.stderr!.on('data', (c: Buffer) => (this.#log = (this.#log + c.toString()).slice(-4000)));
    await waitFor(() => this.#answers(), 15_000, `redis-server on port ${this.port} (log: ${this.#log})`);
  }

  /** PING over a raw socket: true on +PONG */
  #answers(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: this.port }, () => s.write('PING\r\n'));
      s.once('data', (d) => {
        resolve(d.toString().startsWith('+PONG'));
        s.destroy();
      });
      s.once('error', () => resolve(false));
    });
  }

  /** SIGKILL, and wait until it is gone */
  async kill(): Promise<void> {
    const p = this.#proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
