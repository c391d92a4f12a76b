/** The built CLI (dist/src/cli.js) as a child process, typed as an operator types it. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(ROOT, 'dist/src/cli.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run one command to its end (the test's event loop waits: use cliAsync while a peer of this process must keep talking). */
export function cli(args: string[], env: NodeJS.ProcessEnv = process.env, timeout = 20_000): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without blocking this process. */
export function cliAsync(args: string[], env: NodeJS.ProcessEnv = process.env, timeout = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A fresh temporary directory, removed after the test. */
export function tempDir(t: { after: (fn: () => void) => void }, prefix = 'bhp-cli-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A running `cli.js run`: its JSON log lines (other stdout lines in `plain`), and its exit. */
export class RunningCli {
  readonly lines: Record<string, unknown>[] = [];
  readonly plain: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly child: ChildProcess;
  constructor(config: string, options: { args?: string[]; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(process.execPath, [CLI, 'run', '--config', config, ...(options.args ?? [])], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    let partial = '';
    this.child.stdout!.on('data', (c: Buffer) => {
      const parts = (partial + c.toString('utf8')).split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        if (!line.trim()) continue;
        try {
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.plain.push(line);
        }
      }
    });
    this.child.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString('utf8')));
    this.exited = new Promise((r) => this.child.once('exit', (code, signal) => r({ code, signal })));
  }
  waitForLog(match: (l: Record<string, unknown>) => boolean, what: string, ms = 10_000) {
    return waitFor(() => this.lines.find(match), ms, `${what} in the CLI log (stderr: ${this.stderr.slice(0, 500)})`);
  }
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
