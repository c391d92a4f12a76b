/**
 * `bitcoin-hook-proxy/testing`: run hooks against fake peers, without sockets, through the
 * same chain runner the proxy uses. For hook authors' unit tests; the project's own
 * integration tests use real sockets and real nodes.
 */
import { encodeFrame, encodePayload, resolveNetwork, type Frame } from '../codec/index.js';
import type { AcceptDecision } from './accept-result.js';
import { findAdminRoute, runAdminRoute } from './admin-routes.js';

export { AdminRouteError } from './admin-routes.js';
import type { Direction, HookConnection, HookModule, HookPeer, HookResult, OutgoingMessage } from './api.js';
import { HookChain, type ChainTarget, type LoadedHook } from './chain.js';
import { loadHookChain, silentHookServices, type HookSpec } from './loader.js';
import type { HookFault } from './result.js';

export interface FakePeerInit {
  id?: number;
  address?: string;
  port?: number;
  version?: number | null;
  services?: bigint | null;
  userAgent?: string | null;
  startHeight?: number | null;
  relay?: boolean | null;
  handshakeComplete?: boolean;
  features?: Map<string, Buffer>;
}

/** A fake peer and everything the hooks did to it. */
export class FakePeer implements HookPeer, ChainTarget {
  readonly id: number;
  readonly address: string;
  readonly port: number;
  version: number | null;
  services: bigint | null;
  userAgent: string | null;
  startHeight: number | null;
  relay: boolean | null;
  readonly connectedAt = Date.now();
  handshakeComplete: boolean;
  misbehaviour = 0;
  priority = false;
  readonly features: Map<string, Buffer>;
  readonly state = new Map<string, unknown>();
  /** messages hooks sent to this peer */
  readonly pushed: OutgoingMessage[] = [];
  readonly logs: { hook: string; level: string; msg: string; fields: Record<string, unknown> }[] = [];
  banned: { reason: string; duration: string | number | undefined } | null = null;
  disconnected: string | null = null;
  faults: HookFault[] = [];

  constructor(init: FakePeerInit = {}) {
    this.id = init.id ?? 1;
    this.address = init.address ?? '198.51.100.7';
    this.port = init.port ?? 8333;
    this.version = init.version ?? 70016;
    this.services = init.services ?? 0x409n;
    this.userAgent = init.userAgent ?? '/Satoshi:27.0.0/';
    this.startHeight = init.startHeight ?? 0;
    this.relay = init.relay ?? true;
    this.handshakeComplete = init.handshakeComplete ?? true;
    this.features = init.features ?? new Map();
  }

  get hookPeer(): HookPeer {
    return this;
  }
  get closed(): boolean {
    return this.disconnected !== null || this.banned !== null;
  }
  hookLog(hook: LoadedHook, entry: NonNullable<HookResult['log']>): void {
    const e = typeof entry === 'string' ? { msg: entry } : entry;
    const { level = 'info', msg, ...fields } = e;
    this.logs.push({ hook: hook.name, level, msg, fields });
  }
  push(_hook: LoadedHook, message: OutgoingMessage): void {
    this.pushed.push(message);
  }
  misbehave(_hook: LoadedHook, points: number): void {
    this.misbehaviour += points;
  }
  ban(_hook: LoadedHook, reason: string, duration: string | number | undefined): void {
    this.banned = { reason, duration };
  }
  disconnect(_hook: LoadedHook, reason: string): void {
    this.disconnected = reason;
  }
  fault(fault: HookFault): void {
    this.faults.push(fault);
    this.disconnected = `hook_error: ${fault.message}`;
  }
}

export interface Delivery {
  /** what would be forwarded (null: dropped, or the peer was disconnected) */
  forwarded: { command: string; payload: Buffer } | null;
}

export interface TestHarness {
  chain: HookChain;
  /** messages a hook sent via ctx.send(peerId, ...) outside a callback */
  sent: { peerId: number; message: OutgoingMessage }[];
  peer(init?: FakePeerInit): FakePeer;
  /** Run the onAccept hooks for a connection from `conn.address` (defaults: port 8333, local 0.0.0.0:8333). */
  accept(conn: Partial<HookConnection> & { address: string }): Promise<AcceptDecision>;
  /**
   * Deliver a message through the chain as the proxy would. `payload` is raw bytes, or a
   * value for the command's codec (e.g. { nonce: 1n } for ping).
   */
  deliver(peer: FakePeer, direction: Direction, command: string, payload?: Uint8Array | object): Promise<Delivery>;
  /**
   * Call a hook's admin route as the admin API would (`'POST settle'` of hook `paywall`), input
   * validated the same way. Resolves to the JSON answer; rejects with an AdminRouteError
   * (`status`: 400, 404, 405 or the hook's 4xx) or the handler's failure.
   */
  admin(hook: string, route: string, input?: Record<string, unknown>): Promise<unknown>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  network?: string;
  timeoutMs?: number;
  maxMessageSize?: number;
  /** directory that relative module paths resolve against (default: cwd) */
  baseDir?: string;
}

/**
 * Load hooks exactly as the proxy would (by path or package name, with options), or pass a
 * module object directly: `{ module: myHook, options: {...} }`.
 */
// HookModule<any>: a module with an options schema is HookModule<ItsOptions>, which HookModule<never> (or <unknown>) does not accept
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function createHookHarness(hooks: (HookSpec | { module: HookModule<any>; options?: Record<string, unknown> })[], opts: HarnessOptions = {}): Promise<TestHarness> {
  const network = resolveNetwork(opts.network ?? 'regtest');
  const settings = { network, maxMessageSize: opts.maxMessageSize ?? 4_000_000, timeoutMs: opts.timeoutMs ?? 5000 };
  const peers = new Map<number, FakePeer>();
  const sent: TestHarness['sent'] = [];
  const specs: HookSpec[] = hooks.map((h) =>
    typeof h.module === 'string' ? (h as HookSpec) : { module: `(inline ${h.module.name})`, options: h.options ?? {}, instance: h.module },
  );
  const chain = await loadHookChain(specs, {
    baseDir: opts.baseDir ?? process.cwd(),
    settings,
    host: {
      peers: () => [...peers.values()],
      send: (peerId, message) => {
        sent.push({ peerId, message });
        return peers.has(peerId);
      },
      disconnect: (peerId, reason) => {
        const p = peers.get(peerId);
        if (p) p.disconnected = reason;
      },
      misbehave: (peerId, points) => {
        const p = peers.get(peerId);
        if (p) p.misbehaviour += points;
      },
      setPriority: (peerId, priority) => {
        const p = peers.get(peerId);
        if (p) p.priority = priority;
        return p !== undefined;
      },
    },
    ...silentHookServices,
  });
  let nextId = 1;
  return {
    chain,
    sent,
    peer(init = {}) {
      const p = new FakePeer({ id: nextId++, ...init });
      peers.set(p.id, p);
      chain.connect(p);
      return p;
    },
    async accept(conn) {
      return chain.accept({ port: 8333, localAddress: '0.0.0.0', localPort: 8333, ...conn });
    },
    async deliver(peer, direction, command, payload) {
      const bytes = payload === undefined ? Buffer.alloc(0) : payload instanceof Uint8Array ? payload : encodePayload(command, payload);
      const frame: Frame = encodeFrame(network, command, bytes, settings.maxMessageSize);
      if (command.startsWith('x:') && direction === 'inbound') {
        await chain.runX(frame, peer, Date.now());
        return { forwarded: null };
      }
      const out = await chain.run(direction, frame, peer, Date.now());
      return { forwarded: out ? { command: out.command, payload: out.payload } : null };
    },
    async admin(hook, route, input = {}) {
      const space = route.indexOf(' ');
      return runAdminRoute(findAdminRoute(chain.hooks, hook, route.slice(0, space), route.slice(space + 1)), input);
    },
    close: async () => void (await chain.close()),
  };
}
