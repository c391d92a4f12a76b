/**
 * Outbound mode, wired: the SOCKS5 front (src/proxy/socks) whose sessions run the proxy's hook
 * chain plus the buyer hook (src/client/outbound-buyer.ts), the wallet, the payer and the budget
 * from `outbound:` in the YAML. The caller (app.ts) gives the running proxy, to share its
 * settings, its chain (swapped on reload: outbound sessions follow) and its metrics.
 */
import * as path from 'node:path';
import type { Logger } from 'pino';
import { createOutboundBuyer } from './client/outbound-buyer.js';
import { createPayer, type Payer, type PayerConfig } from './client/payers/index.js';
import { Wallet } from './client/wallet.js';
import type { OutboundConfig } from './config.js';
import type { HookLogger, HookMetrics } from './hooks/api.js';
import { HookChain, type HookRuntimeObserver } from './hooks/chain.js';
import { loadHookChain, silentHookServices } from './hooks/loader.js';
import type { ProxyObserver } from './proxy/observer.js';
import type { SessionSettings } from './proxy/peer-session.js';
import type { AttachedSessions } from './proxy/proxy-server.js';
import { SocksServer } from './proxy/socks/socks-server.js';

export interface OutboundDeps {
  /** the inbound proxy's session settings and chain of the moment */
  session: () => SessionSettings;
  chain: () => HookChain;
  log: Logger;
  observer?: ProxyObserver;
  hookObserver?: HookRuntimeObserver;
  logger?: (hook: string) => HookLogger;
  metrics?: (hook: string) => HookMetrics;
  /** relative paths (wallet, payer files) resolve against it */
  baseDir: string;
  /** a payer instead of the configured one (tests, embedding) */
  payer?: Payer;
  /** let the inbound proxy's hooks reach these sessions too (ctx.peers, ctx.send, ctx.disconnect) */
  attach?: (sessions: AttachedSessions) => void;
}

export interface RunningOutbound {
  socks: SocksServer;
  wallet: Wallet;
  close(): Promise<void>;
}

export function payerFromConfig(c: NonNullable<OutboundConfig['payer']>, baseDir: string): Payer {
  const abs = (f: string | undefined) => (f === undefined ? undefined : path.resolve(baseDir, f));
  if (c.kind === 'dev') return createPayer({ kind: 'dev', url: c.url, token: c.token, hook: c.hook, timeoutMs: c.timeout });
  const files = Object.fromEntries(Object.entries(c).filter(([k]) => k.endsWith('File')).map(([k, v]) => [k, abs(v as string)]));
  try {
    return createPayer({ ...c, ...files, timeoutMs: c.timeout } as PayerConfig);
  } catch (e) {
    // the payers read their files now: say which setting names the file, not only ENOENT
    const err = e as NodeJS.ErrnoException;
    const key = Object.keys(files).find((k) => files[k] === err.path);
    if (key) throw new Error(`outbound.payer.${key} ${err.path}: cannot read it (${err.message.split(',')[0]})`);
    throw e;
  }
}

export async function startOutbound(config: OutboundConfig, deps: OutboundDeps): Promise<RunningOutbound> {
  const wallet = Wallet.open(path.resolve(deps.baseDir, config.wallet));
  const payer = deps.payer ?? (config.payer ? payerFromConfig(config.payer, deps.baseDir) : null);
  const maxFeeMsat = BigInt(config.maxFeeSats) * 1000n;
  let socks: SocksServer | null = null;
  // another hook that answers x:hello (docs/x-protocol.md: the features module) already announces our feature
  const announce = () => deps.chain().xCommand('x:hello') === undefined;
  const buyerChain = await loadHookChain([{ module: 'bitcoin-hook-proxy/client#buyer', options: {}, instance: createOutboundBuyer({ wallet, payer: payer && withFeeLimit(payer, maxFeeMsat), budget: config.budget ?? null, announce: announce(), maxFeeMsat }) }], {
    baseDir: deps.baseDir,
    settings: deps.chain().settings,
    host: {
      peers: () => socks?.sessions().map((s) => s.hookPeer) ?? [],
      send: (id, m) => socks?.send(id, m) ?? false,
      disconnect: (id, reason) => socks?.disconnect(id, reason),
      misbehave: () => {},
      setPriority: () => false, // priority is for inbound peers holding a paid tier
    },
    logger: deps.logger ?? silentHookServices.logger,
    metrics: deps.metrics ?? silentHookServices.metrics,
    ...(deps.hookObserver ? { observer: deps.hookObserver } : {}),
  });
  // the proxy's chain with the buyer last (its x: answers win over a seller's same-named requests)
  let base: HookChain | null = null;
  let combined: HookChain | null = null;
  const chain = () => {
    const now = deps.chain();
    if (now !== base || !combined) {
      base = now;
      combined = new HookChain([...now.hooks, ...buyerChain.hooks], now.settings, now.observer);
    }
    return combined;
  };
  const listen = Array.isArray(config.socks.listen) ? config.socks.listen : [config.socks.listen];
  socks = new SocksServer({
    settings: { listen, upstream: config.upstream ?? null, maxConnections: config.socks.maxConnections, negotiateTimeout: config.socks.negotiateTimeout, connectTimeout: config.socks.connectTimeout },
    session: deps.session,
    chain,
    log: deps.log,
    ...(deps.observer ? { observer: deps.observer } : {}),
  });
  await socks.listen();
  deps.attach?.(socks);
  return {
    socks,
    wallet,
    async close() {
      await socks?.close();
      await buyerChain.close();
    },
  };
}

/** The configured fee limit applies whatever the caller passes. */
function withFeeLimit(p: Payer, maxFeeMsat: bigint): Payer {
  return { kind: p.kind, pay: (b, a, f) => p.pay(b, a, f < maxFeeMsat ? f : maxFeeMsat) };
}
