/**
 * A real regtest litecoind as a child process, for tests against a P2P node this team did not write.
 *
 * Why litecoind: Debian ships it (package `litecoind`), and Litecoin Core 0.21.2.1 is Bitcoin
 * Core 0.21's P2P code. What we found about it (checked on this machine, litecoind
 * v0.21.2.1-gfce5d459f0):
 *   - P2P framing and the regtest magic are Bitcoin's: fa bf b5 da. Default regtest P2P port
 *     19444 and RPC port 19443 (bitcoind: 18444 / 18443); we always pass our own free ports.
 *   - The regtest GENESIS BLOCK DIFFERS from Bitcoin's: litecoin regtest genesis is
 *     530827f38f93b43ed12af0b3ad25a288dc02ed74d6d7857862df51fc56c416f9, Bitcoin's (and bcoin's)
 *     is 0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206. Proof of work is
 *     scrypt, not sha256d. So litecoind and bcoin complete a version/verack handshake and talk
 *     (ping, getheaders, addr, ...) but can never share a chain. Chain sync tests pair
 *     litecoind with litecoind, or bcoin with bcoin.
 *   - Services advertised: NETWORK | WITNESS | NETWORK_LIMITED | MWEB (1 << 24), i.e.
 *     0x01000409; protocol version 70016; user agent /LitecoinCore:0.21.2.1/. It sends
 *     wtxidrelay, sendaddrv2, sendheaders, sendcmpct, feefilter like bitcoind 0.21.
 *   - Regtest soft forks: segwit active from genesis, taproot active (bip9 "active" since 0),
 *     mweb "defined" (never activates by itself). Plain generatetoaddress works; no -vbparams
 *     needed. Blocks carry no MWEB extension data while mweb is inactive.
 *   - Addresses: bech32 HRP is `rltc` (rltc1q...), not `bcrt`.
 *   - 0.21 has no -natpmp option (added in 22.0): passing it makes litecoind exit at once with
 *     "Invalid parameter -natpmp=0". It creates no wallet by default: we create one on first
 *     use (createwallet).
 *   - Startup to RPC ready takes about 0.3 s on an idle machine; a clean stop about 1 s.
 *
 * Cleanup guard: every node started here is killed (SIGKILL) and its datadir removed when the
 * Node process exits, however it exits; on Linux the child is also started under
 * `setpriv --pdeathsig KILL` (util-linux) when available, so even a SIGKILLed test process
 * cannot leave a litecoind running.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { sleep, waitFor } from './wait.js';
import { simulatedMissing } from './without.js';

export const LITECOIND_HOST = '127.0.0.1';

/**
 * Path of the litecoind binary: $LITECOIND, else Debian's real binary /usr/lib/litecoin/litecoind,
 * else /usr/bin/litecoind, else `litecoind` on PATH. Debian's /usr/bin/litecoind is a shell
 * wrapper that creates ~/.litecoin/litecoin.conf (with perl) before exec'ing the real binary;
 * we skip it so tests never write to $HOME.
 */
export function litecoindPath(): string | null {
  if (simulatedMissing('litecoind')) return null;
  const candidates = [process.env.LITECOIND, '/usr/lib/litecoin/litecoind', '/usr/bin/litecoind', '/usr/local/bin/litecoind'].filter(
    (p): p is string => typeof p === 'string' && p.length > 0,
  );
  for (const candidate of candidates) if (existsSync(candidate)) return candidate;
  const which = spawnSync('sh', ['-c', 'command -v litecoind'], { encoding: 'utf8' });
  const found = which.status === 0 ? which.stdout.trim() : '';
  return found.length > 0 ? found : null;
}

let versionCache: string | null | undefined;

/** The first line of `litecoind -version`, or null when the binary is missing or does not run. */
export function litecoindVersion(): string | null {
  if (versionCache !== undefined) return versionCache;
  const bin = litecoindPath();
  if (!bin) return (versionCache = null);
  const result = spawnSync(bin, ['-version'], { encoding: 'utf8', timeout: 10_000 });
  versionCache = result.status === 0 ? (result.stdout.split('\n')[0] ?? '').trim() : null;
  return versionCache;
}

/** True when a working litecoind binary is installed. */
export function litecoindAvailable(): boolean {
  return litecoindVersion() !== null;
}

/**
 * For `test(name, { skip: litecoindSkipReason() }, ...)`: false when litecoind is there, else
 * the reason to print. CI installs litecoind (.ci/run), so there this is always false.
 */
export function litecoindSkipReason(): string | false {
  // Under CI a missing node must fail the run, not skip it silently (.ci/run installs it).
  if (litecoindAvailable() || process.env.CI) return false;
  const bin = litecoindPath();
  return bin
    ? `litecoind at ${bin} does not run (\`${bin} -version\` failed)`
    : 'litecoind is not installed (apt-get install litecoind, or set LITECOIND=/path/to/litecoind)';
}

export interface LitecoindOptions {
  /** label used in error messages and the datadir name (default `ltc`) */
  name?: string;
  /** extra command-line arguments, e.g. [`-connect=127.0.0.1:${port}`] */
  extraArgs?: string[];
  /** pass -txindex=1 */
  txindex?: boolean;
  /** -disablewallet (default false: the wallet is there, created on first use) */
  disableWallet?: boolean;
  /** ms to wait for RPC readiness (default 30 000) */
  startTimeoutMs?: number;
  /** keep the datadir after stop() (default: the env BHP_KEEP_DATADIR is set) */
  keepDatadir?: boolean;
}

export interface PeerInfo {
  id: number;
  addr: string;
  addrlocal?: string;
  services: string;
  inbound: boolean;
  subver: string;
  version: number;
  startingheight: number;
  synced_headers: number;
  synced_blocks: number;
  bytessent_per_msg: Record<string, number>;
  bytesrecv_per_msg: Record<string, number>;
  [key: string]: unknown;
}

/** A JSON-RPC error answered by litecoind (`code` as in Bitcoin Core's rpc/protocol.h). */
export class RpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    message: string,
  ) {
    super(`${method}: RPC error ${code}: ${message}`);
    this.name = 'RpcError';
  }
}

const running = new Set<Litecoind>();
let guardInstalled = false;

function installExitGuard(): void {
  if (guardInstalled) return;
  guardInstalled = true;
  process.on('exit', () => {
    for (const node of running) node.killNow();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const node of running) node.killNow();
      // Let the default action (or any other handler) happen as it would have without us.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

let pdeathsigCache: boolean | undefined;
function haveSetprivPdeathsig(): boolean {
  if (pdeathsigCache === undefined) {
    const r = spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore', timeout: 5000 });
    pdeathsigCache = r.status === 0;
  }
  return pdeathsigCache;
}

/** A running regtest litecoind. Create it with startLitecoind(). */
export class Litecoind {
  readonly host = LITECOIND_HOST;
  #child: ChildProcess;
  #exited: Promise<void>;
  #exitCode: number | null | undefined;
  #exitSignal: NodeJS.Signals | null = null;
  #stderr = '';
  #stopped = false;
  #walletReady: Promise<void> | null = null;
  #address: string | null = null;
  #rpcId = 0;

  constructor(
    readonly name: string,
    readonly datadir: string,
    readonly p2pPort: number,
    readonly rpcPort: number,
    readonly args: readonly string[],
    private readonly auth: string,
    private readonly keepDatadir: boolean,
    private readonly bin: string,
  ) {
    [this.#child, this.#exited] = this.#spawn();
    running.add(this);
  }

  #spawn(): [ChildProcess, Promise<void>] {
    const useSetpriv = haveSetprivPdeathsig();
    const command = useSetpriv ? 'setpriv' : this.bin;
    const argv = useSetpriv ? ['--pdeathsig', 'KILL', this.bin, ...this.args] : [...this.args];
    this.#exitCode = undefined;
    this.#exitSignal = null;
    this.#child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child.stderr?.setEncoding('utf8');
    this.#child.stderr?.on('data', (text: string) => {
      if (this.#stderr.length < 20_000) this.#stderr += text;
    });
    this.#exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exitCode = code;
        this.#exitSignal = signal;
        resolve();
      });
      this.#child.once('error', (err) => {
        this.#stderr += `\nspawn error: ${err.message}`;
        this.#exitCode = -1;
        resolve();
      });
    });
    return [this.#child, this.#exited];
  }

  /** SIGKILL, as a crash would, keeping the datadir so that restart() can bring the node back. */
  async kill(): Promise<void> {
    if (!this.exited) this.#child.kill('SIGKILL');
    await this.#exited;
    // A pid file naming a dead process marks the datadir stale for any test process's sweep
    // (sweepStaleDatadirs): drop it and touch the folder, so it reads as fresh until restart().
    rmSync(path.join(this.datadir, 'regtest', 'bitcoind.pid'), { force: true });
    const now = new Date();
    utimesSync(this.datadir, now, now);
  }

  /** After kill(): start again with the same ports, datadir and credentials, and wait for RPC. */
  async restart(timeoutMs = 30_000): Promise<void> {
    if (this.#stopped) throw new Error(`${this.name}: restart() after stop()`);
    if (!this.exited) throw new Error(`${this.name}: restart() while still running (kill() first)`);
    this.#spawn();
    await this.waitReady(timeoutMs);
  }

  /** `127.0.0.1:PORT` of the P2P listener */
  get p2pAddress(): string {
    return `${this.host}:${this.p2pPort}`;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** true once the process has exited */
  get exited(): boolean {
    return this.#exitCode !== undefined;
  }

  /** what litecoind wrote to stderr (startup errors land here) */
  get stderr(): string {
    return this.#stderr;
  }

  /** The last `lines` lines of regtest/debug.log (for failure messages). */
  debugLogTail(lines = 40): string {
    try {
      const text = readFileSync(path.join(this.datadir, 'regtest', 'debug.log'), 'utf8');
      return text.split('\n').slice(-lines - 1).join('\n');
    } catch {
      return '(no debug.log)';
    }
  }

  /** One JSON-RPC call over HTTP (node:http, Basic auth). Throws RpcError on an RPC error. */
  rpc<T = unknown>(method: string, params: unknown[] = [], timeoutMs = 60_000): Promise<T> {
    const body = JSON.stringify({ jsonrpc: '1.0', id: ++this.#rpcId, method, params });
    return new Promise<T>((resolve, reject) => {
      const req = http.request(
        {
          host: this.host,
          port: this.rpcPort,
          method: 'POST',
          path: '/',
          agent: false,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            authorization: `Basic ${Buffer.from(this.auth).toString('base64')}`,
          },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let reply: { result?: unknown; error?: { code: number; message: string } | null };
            try {
              reply = JSON.parse(text) as typeof reply;
            } catch {
              reject(new Error(`${this.name} ${method}: HTTP ${res.statusCode} with a non-JSON body: ${text.slice(0, 200)}`));
              return;
            }
            if (reply.error) reject(new RpcError(method, reply.error.code, reply.error.message));
            else resolve(reply.result as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${this.name} ${method}: no RPC answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Wait until RPC answers (getblockcount succeeds), failing at once if the process exits. */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    for (;;) {
      if (this.exited) {
        const why = this.#stderr.trim() || this.debugLogTail(15);
        throw new Error(`${this.name}: litecoind exited during startup (code ${this.#exitCode}, signal ${this.#exitSignal}): ${why}`);
      }
      try {
        await this.rpc('getblockcount', [], 2000);
        return;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() >= deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${this.name} (litecoind, rpc port ${this.rpcPort}) to answer RPC (last error: ${last})`);
      }
      await sleep(50);
    }
  }

  /** Create (once) the wallet `harness` and return a fresh address from it (rltc1q...). */
  async getNewAddress(): Promise<string> {
    this.#walletReady ??= this.rpc('createwallet', ['harness']).then(() => undefined);
    await this.#walletReady;
    return this.rpc<string>('getnewaddress');
  }

  /** Mine `n` blocks to `address` (default: one address of this node's wallet). Returns the block hashes. */
  async generate(n: number, address?: string): Promise<string[]> {
    const to = address ?? (this.#address ??= await this.getNewAddress());
    return this.rpc<string[]>('generatetoaddress', [n, to]);
  }

  getBlockCount(): Promise<number> {
    return this.rpc<number>('getblockcount');
  }

  getBestBlockHash(): Promise<string> {
    return this.rpc<string>('getbestblockhash');
  }

  getBlockHash(height: number): Promise<string> {
    return this.rpc<string>('getblockhash', [height]);
  }

  getPeerInfo(): Promise<PeerInfo[]> {
    return this.rpc<PeerInfo[]>('getpeerinfo');
  }

  /** `addnode host:port onetry|add|remove` (onetry: one outbound attempt now). */
  addNode(hostPort: string, command: 'onetry' | 'add' | 'remove' = 'onetry'): Promise<null> {
    return this.rpc<null>('addnode', [hostPort, command]);
  }

  /** `disconnectnode`: by address ("host:port") or by peer id. */
  disconnectNode(target: string | number): Promise<null> {
    return typeof target === 'number' ? this.rpc<null>('disconnectnode', ['', target]) : this.rpc<null>('disconnectnode', [target]);
  }

  /** Wait until this node's tip is at least `height`. */
  async waitForHeight(height: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => (await this.getBlockCount()) >= height, timeoutMs, `${this.name} to reach height ${height}`);
  }

  /** Wait until getpeerinfo lists at least `count` peers whose handshake finished (version known). */
  async waitForPeers(count = 1, timeoutMs = 30_000): Promise<PeerInfo[]> {
    return waitFor(
      async () => {
        const peers = (await this.getPeerInfo()).filter((p) => p.version > 0);
        return peers.length >= count ? peers : null;
      },
      timeoutMs,
      `${this.name} to have ${count} handshaken peer(s)`,
    );
  }

  /**
   * Stop for sure: SIGTERM (litecoind shuts down cleanly on it), SIGKILL after `graceMs`,
   * then remove the datadir. Safe to call twice.
   */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#stopped) return this.#exited;
    this.#stopped = true;
    try {
      if (!this.exited) {
        this.#child.kill('SIGTERM');
        // an abortable grace timer, so a prompt exit does not keep the test process alive
        const grace = new AbortController();
        const done = await Promise.race([
          this.#exited.then(() => true),
          sleep(graceMs, undefined, { signal: grace.signal }).then(
            () => false,
            () => true,
          ),
        ]);
        grace.abort();
        if (!done) {
          this.#child.kill('SIGKILL');
          await this.#exited;
        }
      }
    } finally {
      running.delete(this);
      this.#removeDatadir();
    }
  }

  /** Synchronous SIGKILL and datadir removal (the exit guard's path). */
  killNow(): void {
    if (!this.exited) {
      try {
        this.#child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    running.delete(this);
    this.#removeDatadir();
  }

  #removeDatadir(): void {
    if (this.keepDatadir) return;
    try {
      rmSync(this.datadir, { recursive: true, force: true });
    } catch {
      /* best effort: a dying litecoind may still be writing */
    }
  }
}

const DATADIR_PREFIX = 'bhp-litecoind-';
let swept = false;

/**
 * Remove datadirs left in the temp folder by a test process that was SIGKILLed (its exit guard
 * could not run; pdeathsig killed litecoind, but nothing removed the folder). A folder is stale
 * when the pid in its regtest/bitcoind.pid (litecoind keeps Bitcoin's file name) is no longer a
 * process, or, without a pid file, when it is older than 10 minutes. Live nodes of other test
 * processes are left alone.
 */
function sweepStaleDatadirs(): void {
  if (swept) return;
  swept = true;
  const tmp = os.tmpdir();
  let names: string[];
  try {
    names = readdirSync(tmp).filter((n) => n.startsWith(DATADIR_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = path.join(tmp, name);
    try {
      let stale: boolean;
      const pidFile = path.join(dir, 'regtest', 'bitcoind.pid');
      if (existsSync(pidFile)) {
        const pid = Number.parseInt(readFileSync(pidFile, 'utf8'), 10);
        stale = Number.isInteger(pid) && pid > 0 && !processAlive(pid);
      } else {
        stale = Date.now() - statSync(dir).mtimeMs > 10 * 60_000;
      }
      if (stale) rmSync(dir, { recursive: true, force: true });
    } catch {
      /* not ours to worry about */
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Start a regtest litecoind on free 127.0.0.1 ports with a fresh temporary datadir, and wait
 * until its RPC answers. Always stop() it (in a finally or t.after); the exit guard is a backstop.
 */
export async function startLitecoind(options: LitecoindOptions = {}): Promise<Litecoind> {
  const bin = litecoindPath();
  if (!bin || !litecoindAvailable()) throw new Error(String(litecoindSkipReason()));
  installExitGuard();
  sweepStaleDatadirs();
  const name = options.name ?? 'ltc';
  const p2pPort = await freePort();
  const rpcPort = await freePort();
  const datadir = mkdtempSync(path.join(os.tmpdir(), `${DATADIR_PREFIX}${name.replace(/[^A-Za-z0-9_-]/g, '_')}-`));
  const user = 'bhp';
  const password = randomBytes(12).toString('hex');
  const args = [
    '-regtest',
    `-datadir=${datadir}`,
    '-server=1',
    '-listen=1',
    `-bind=${LITECOIND_HOST}:${p2pPort}`,
    `-port=${p2pPort}`,
    `-rpcbind=${LITECOIND_HOST}`,
    `-rpcport=${rpcPort}`,
    `-rpcallowip=${LITECOIND_HOST}`,
    `-rpcuser=${user}`,
    `-rpcpassword=${password}`,
    '-printtoconsole=0',
    '-discover=0',
    '-dnsseed=0',
    '-listenonion=0',
    '-upnp=0',
    '-fallbackfee=0.0002',
    '-keypool=5',
    ...(options.txindex ? ['-txindex=1'] : []),
    ...(options.disableWallet ? ['-disablewallet=1'] : []),
    ...(options.extraArgs ?? []),
  ];
  const node = new Litecoind(
    name,
    datadir,
    p2pPort,
    rpcPort,
    args,
    `${user}:${password}`,
    options.keepDatadir ?? Boolean(process.env.BHP_KEEP_DATADIR),
    bin,
  );
  try {
    await node.waitReady(options.startTimeoutMs ?? 30_000);
  } catch (err) {
    await node.stop(1000);
    throw err;
  }
  return node;
}

/** Stop every litecoind this process started and has not stopped yet. */
export async function stopAllLitecoind(): Promise<void> {
  await Promise.all([...running].map((node) => node.stop()));
}
