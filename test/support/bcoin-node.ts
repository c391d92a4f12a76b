/**
 * A real bcoin 1.0.2 regtest full node in this process (in-memory chain), for tests against a
 * Bitcoin P2P implementation this team did not write.
 *
 * Notes from trying it here:
 *   - bcoin is CommonJS; loaded with createRequire. It must run with NODE_BACKEND unset (or
 *     `js`); its native leveldown is not used with `memory: true`.
 *   - bcoin.set('regtest') is process-global; every node here is regtest.
 *   - Regtest is Bitcoin's: genesis 0f9188f1...2206, magic fabfb5da, default P2P port 48444,
 *     HTTP port 48332. We give every node its own free P2P and HTTP ports (two nodes in one
 *     process would otherwise collide on the HTTP port).
 *   - open() + connect() takes about 2 s (most of it building the in-memory chain and
 *     mempool). Mining a regtest block in-process takes a few ms.
 *   - Outbound connections: the pool's `only` option fixes the outbound peers at start; at
 *     run time connectTo() does what bcoin's own addLoader/addOutbound do (createOutbound,
 *     peers.add, and make it the loader peer if there is none, so it syncs from it).
 *   - bcoin cannot sync with litecoind: Litecoin's regtest genesis differs (and its PoW is
 *     scrypt). The version/verack handshake between them works, nothing more.
 */
import { createRequire } from 'node:module';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const require = createRequire(import.meta.url);

/* eslint-disable @typescript-eslint/no-explicit-any -- bcoin ships no types */
type Any = any;

let bcoinModule: Any;
function bcoin(): Any {
  if (!bcoinModule) {
    bcoinModule = require('bcoin');
    bcoinModule.set('regtest');
  }
  return bcoinModule;
}

/** True when bcoin can be loaded (it is a devDependency, so normally always). */
export function bcoinAvailable(): boolean {
  try {
    bcoin();
    return true;
  } catch {
    return false;
  }
}

/** bcoin's package version, e.g. "1.0.2". */
export function bcoinVersion(): string {
  return String(require('bcoin/package.json').version);
}

export interface BcoinNodeOptions {
  /** label for error messages (default `bcoin`) */
  name?: string;
  /** accept inbound peers (default true) */
  listen?: boolean;
  /** outbound peers fixed at start, as "host:port" (bcoin's `only`) */
  only?: string[];
  /** start chain sync from the loader peer (default true; bcoin's bin/node does the same) */
  sync?: boolean;
  /** more FullNode options, merged last */
  extra?: Record<string, unknown>;
}

export interface BcoinPeerSummary {
  id: number;
  hostname: string;
  outbound: boolean;
  handshake: boolean;
  loader: boolean;
  version: number;
  agent: string | null;
  height: number;
}

/** A running bcoin full node. Create it with startBcoin(). */
export class BcoinNode {
  readonly host = '127.0.0.1';
  #stopped = false;
  #address: Any = null;

  constructor(
    readonly name: string,
    /** the bcoin FullNode itself, for anything the helpers do not cover */
    readonly node: Any,
    readonly port: number,
    readonly httpPort: number,
  ) {}

  /** `127.0.0.1:PORT` of the P2P listener */
  get p2pAddress(): string {
    return `${this.host}:${this.port}`;
  }

  get height(): number {
    return this.node.chain.height as number;
  }

  /** tip hash in RPC byte order (as litecoind/bitcoind print hashes) */
  tipHash(): string {
    return this.node.chain.tip.rhash() as string;
  }

  /** A fresh P2WPKH regtest address (bcrt1q...) to mine to. */
  newAddress(): string {
    const { KeyRing } = bcoin();
    const ring = KeyRing.generate();
    ring.witness = true;
    return ring.getAddress().toString(this.node.network) as string;
  }

  /** Mine `n` blocks (segwit-era coinbase with witness commitment) and return their hashes (RPC order). */
  async mine(n: number, address?: string): Promise<string[]> {
    const { Address } = bcoin();
    const to = address ? Address.fromString(address, this.node.network) : (this.#address ??= Address.fromString(this.newAddress(), this.node.network));
    const hashes: string[] = [];
    for (let i = 0; i < n; i++) {
      const block = await this.node.miner.mineBlock(null, to);
      const entry = await this.node.chain.add(block);
      if (!entry) throw new Error(`${this.name}: mined block was not connected`);
      hashes.push(entry.rhash() as string);
    }
    return hashes;
  }

  /** Open an outbound connection to host:port; it becomes the sync (loader) peer if there is none. */
  connectTo(host: string, port: number): void {
    const { net } = bcoin();
    const pool = this.node.pool;
    const addr = net.NetAddress.fromHostname(`${host}:${port}`, this.node.network);
    const peer = pool.createOutbound(addr);
    pool.peers.add(peer);
    if (!pool.peers.load) pool.setLoader(peer);
  }

  peers(): BcoinPeerSummary[] {
    const list: BcoinPeerSummary[] = [];
    for (let peer = this.node.pool.peers.head(); peer; peer = peer.next) {
      list.push({
        id: peer.id,
        hostname: peer.hostname(),
        outbound: Boolean(peer.outbound),
        handshake: Boolean(peer.handshake),
        loader: Boolean(peer.loader),
        version: peer.version,
        agent: peer.agent,
        height: peer.height,
      });
    }
    return list;
  }

  async waitForHeight(height: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(() => this.height >= height, timeoutMs, `${this.name} (bcoin) to reach height ${height}`);
  }

  /** Wait until at least `count` peers finished the version handshake. */
  async waitForPeers(count = 1, timeoutMs = 30_000): Promise<BcoinPeerSummary[]> {
    return waitFor(
      () => {
        const done = this.peers().filter((p) => p.handshake);
        return done.length >= count ? done : null;
      },
      timeoutMs,
      `${this.name} (bcoin) to have ${count} handshaken peer(s)`,
    );
  }

  /** Disconnect every peer, stop listening, close the node. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    running.delete(this);
    try {
      if (this.node.pool.connected) await this.node.disconnect();
    } finally {
      await this.node.close();
    }
  }
}

const running = new Set<BcoinNode>();

/** Start a regtest bcoin full node (memory chain) listening on a free 127.0.0.1 port. */
export async function startBcoin(options: BcoinNodeOptions = {}): Promise<BcoinNode> {
  const { FullNode } = bcoin();
  const name = options.name ?? 'bcoin';
  const port = await freePort();
  const httpPort = await freePort();
  const node = new FullNode({
    network: 'regtest',
    memory: true,
    workers: false,
    logLevel: process.env.BHP_BCOIN_LOG ?? 'none',
    listen: options.listen ?? true,
    host: '127.0.0.1',
    port,
    publicHost: '127.0.0.1',
    publicPort: port,
    httpHost: '127.0.0.1',
    httpPort,
    // no DNS seeds, no UPnP, no outbound to anything we did not name
    discover: false,
    upnp: false,
    seeds: [],
    only: options.only ?? [],
    maxOutbound: options.only && options.only.length > 0 ? options.only.length : 8,
    ...options.extra,
  });
  await node.open();
  try {
    await node.connect();
    // Without startSync bcoin connects but never asks its loader peer for headers or blocks.
    if (options.sync ?? true) node.startSync();
  } catch (err) {
    await node.close().catch(() => {});
    throw err;
  }
  const handle = new BcoinNode(name, node, port, httpPort);
  running.add(handle);
  return handle;
}

/** Stop every bcoin node this process started and has not stopped yet. */
export async function stopAllBcoin(): Promise<void> {
  await Promise.all([...running].map((n) => n.stop()));
}
