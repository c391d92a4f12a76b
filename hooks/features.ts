/**
 * features: the discovery handshake of the proxy's x: protocol, on BIP 434 (docs/x-protocol.md
 * is the specification; docs/hooks/features.md the operator's page).
 *
 *   - To every peer of protocol 70017+ it announces the feature X_FEATURE_ID
 *     (`bitcoin-hook-proxy/x/1`) with feature data listing the x: commands the chain offers,
 *     x:hello first. The runtime sends it right after bitcoind's `version`.
 *   - It reads what each peer announced (peer.features, recorded by the runtime from 70017+
 *     peers between their version and verack) and counts, at the peer's verack, whether it
 *     announced our feature.
 *   - It answers `x:hello` (after the handshake, from peers that announced our feature) with
 *     the proxy's name and version, the hook API version, the network, every module of the
 *     chain with its x: commands (ctx.chainInfo()), and the feature ids the peer announced.
 *     A request it does not answer (feature not announced, handshake not complete, malformed)
 *     gets the `refused` action: dropped by default (the runtime would refuse to send an x:
 *     reply to a peer that did not announce the feature anyway, and BIP 434 asks nodes to
 *     ignore what they do not understand), optionally misbehaviour points or a disconnect.
 *   - Optionally (`serviceBit`) it sets an experimental service bit (24..31) in the version that
 *     bitcoind sends to peers older than 70017, which cannot receive `feature` messages.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { codec, defineHook, FEATURE_MIN_VERSION, HOOK_API_VERSION, X_FEATURE_ID, type HookContext, type HookCounter, type HookPeer } from '../src/hooks/index.js';
import { actionSchema, applyAction } from './lib/common.js';

const NAME = 'features';

/** per-peer state key: the peer's verack was counted */
const COUNTED_KEY = `${NAME}.verackCounted`;
/** Version byte of the feature data and of the x:hello answer (docs/x-protocol.md). */
export const FEATURE_DATA_VERSION = 1;
export const HELLO_VERSION = 1;
/** Feature data flags: bit 0, the command list did not fit in 512 bytes (x:hello has all). */
export const FLAG_TRUNCATED = 0x01;

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** printable ASCII, as every string of the x: protocol */
const printable = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[\x20-\x7e]+$/, 'printable ASCII only');

const Options = z.strictObject({
  /** software name in x:hello */
  name: printable(80).default('bitcoin-hook-proxy'),
  /** software version in x:hello (default: the version of the installed bitcoin-hook-proxy package) */
  version: printable(80).optional(),
  /** what happens to an x:hello that is not answered */
  refused: actionSchema.default('drop'),
  /** experimental service bit set for peers older than 70017 (off by default; Litecoin uses 24 for MWEB) */
  serviceBit: z.number().int().min(24).max(31).optional(),
});
export type FeaturesOptions = z.input<typeof Options>;

let options: z.output<typeof Options> & { version: string };
let announced: HookCounter;
let peersSeen: HookCounter;
let hello: HookCounter;
let bitSet: HookCounter;


/** The x: commands the chain offers: x:hello first (so a cut list still has it), then chain order. */
function offeredCommands(ctx: HookContext): string[] {
  return ['x:hello', ...ctx.chainInfo().flatMap((m) => m.xCommands.filter((c) => c !== 'x:hello'))];
}

/**
 * Feature data, format 1: version, flags, CompactSize count, count × var_str command; at most
 * 512 bytes. A list that does not fit is cut to its longest prefix that does.
 */
export function encodeFeatureData(commands: readonly string[]): Buffer {
  const fitting: string[] = [];
  let size = 2 + 3; // version, flags, a CompactSize of at most 3 bytes
  for (const c of commands) {
    if (size + 1 + c.length > codec.MAX_FEATURE_DATA_LENGTH) break;
    fitting.push(c);
    size += 1 + c.length;
  }
  const w = new codec.PayloadWriter(size)
    .u8(FEATURE_DATA_VERSION)
    .u8(fitting.length < commands.length ? FLAG_TRUNCATED : 0)
    .compactSize(fitting.length);
  for (const c of fitting) w.varString(c);
  return w.finish();
}

export interface HelloAnswer {
  nonce: bigint;
  name: string;
  version: string;
  apiVersion: string;
  network: string;
  modules: readonly { name: string; xCommands: readonly string[] }[];
  peerFeatures: readonly string[];
}

/** The x:hello answer, format 1 (docs/x-protocol.md). */
export function encodeHelloAnswer(a: HelloAnswer): Buffer {
  const w = new codec.PayloadWriter(256).u64(a.nonce).u8(HELLO_VERSION).varString(a.name).varString(a.version).varString(a.apiVersion).varString(a.network);
  w.compactSize(a.modules.length);
  for (const m of a.modules) {
    w.varString(m.name).compactSize(m.xCommands.length);
    for (const c of m.xCommands) w.varString(c);
  }
  w.compactSize(a.peerFeatures.length);
  for (const f of a.peerFeatures) w.varString(f);
  return w.finish();
}

function refuse(why: 'not_announced' | 'before_handshake' | 'malformed', peer: HookPeer) {
  hello.inc({ outcome: why });
  const r = applyAction(options.refused, `x:hello not answered (${why.replace('_', ' ')})`);
  // a refused hello is noise, not news: keep the drop's log line at debug
  return { ...r, log: { level: 'debug' as const, msg: 'x:hello not answered', why, peer: `${peer.address}:${peer.port}` } };
}

export default defineHook({
  apiVersion: HOOK_API_VERSION,
  name: NAME,
  options: Options,
  // the version message is only wanted when serviceBit is set; everything else stays on the fast path
  wants: (o) => ({ inbound: ['verack'], ...(o.serviceBit !== undefined ? { outbound: ['version'] } : {}) }),

  init(opts, ctx) {
    options = { ...opts, version: opts.version ?? packageVersion() };
    announced = ctx.metrics.counter('features_announced_total', 'BIP 434 feature messages with the x: protocol announced to peers');
    peersSeen = ctx.metrics.counter('features_peers_total', 'peers at their verack, by whether they announced the x: feature', ['x_feature']);
    hello = ctx.metrics.counter('features_hello_total', 'x:hello requests by outcome', ['outcome']);
    bitSet = ctx.metrics.counter('features_service_bit_total', 'version messages to peers older than 70017 given the experimental service bit');
  },

  features(_peer, ctx) {
    announced.inc();
    return [{ id: X_FEATURE_ID, data: encodeFeatureData(offeredCommands(ctx)) }];
  },

  onMessage(msg, peer) {
    if (msg.direction === 'inbound') {
      // msg is the peer's verack: every feature it announces has arrived (BIP 434). Only the
      // first counts: bitcoind ignores redundant veracks, and a peer must not inflate the metric.
      if (peer.state.has(COUNTED_KEY)) return;
      peer.state.set(COUNTED_KEY, true);
      peersSeen.inc({ x_feature: peer.features.has(X_FEATURE_ID) ? 'yes' : 'no' });
      return;
    }
    // bitcoind's version (only wanted with serviceBit)
    if (options.serviceBit === undefined || peer.version === null || peer.version >= FEATURE_MIN_VERSION) return;
    const v = msg.decode<codec.VersionMessage>();
    v.services |= 1n << BigInt(options.serviceBit);
    bitSet.inc();
    return { replace: { command: 'version', payload: codec.encodePayload('version', v) } };
  },

  commands: {
    'x:hello'(msg, peer, ctx) {
      if (!peer.features.has(X_FEATURE_ID)) return refuse('not_announced', peer);
      if (!peer.handshakeComplete) return refuse('before_handshake', peer);
      if (msg.size < 8) return refuse('malformed', peer);
      hello.inc({ outcome: 'answered' });
      const payload = encodeHelloAnswer({
        nonce: msg.payload.readBigUInt64LE(0),
        name: options.name,
        version: options.version,
        apiVersion: HOOK_API_VERSION,
        network: ctx.network,
        modules: ctx.chainInfo(),
        peerFeatures: [...peer.features.keys()],
      });
      return { push: [{ command: 'x:hello', payload }] };
    },
  },
});
