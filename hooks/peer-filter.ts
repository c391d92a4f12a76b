/**
 * peer-filter: decides whether a peer may stay. Address and subnet lists are checked in
 * onAccept, before the proxy opens a connection to bitcoind, so a denied peer costs bitcoind
 * nothing; protocol version, service bits and user agent when its `version` message arrives
 * (before it reaches bitcoind). A rejected peer is refused, disconnected or banned.
 * List files are read in init(), so a config reload (which re-inits the chain) reloads them.
 * Documented in docs/hooks/peer-filter.md.
 *
 * Cost: it wants inbound `version` only when a version rule is configured; every other frame
 * stays on the raw fast path.
 */
import { z } from 'zod';
import { defineHook, HOOK_API_VERSION, type AcceptResult, type HookCounter, type HookGauge, type HookPeer, type HookResult } from '../src/hooks/index.js';
import { AddressList, loadListFile, parseEntry } from './lib/address-list.js';
import { positiveDurationSeconds } from './lib/common.js';

/** Service bit names (Bitcoin Core's ServiceFlags) accepted in `services.required/forbidden`. */
export const SERVICE_BITS: Readonly<Record<string, bigint>> = {
  NETWORK: 1n << 0n,
  GETUTXO: 1n << 1n,
  BLOOM: 1n << 2n,
  WITNESS: 1n << 3n,
  XTHIN: 1n << 4n,
  COMPACT_FILTERS: 1n << 6n,
  NETWORK_LIMITED: 1n << 10n,
  P2P_V2: 1n << 11n,
};

/** A service flag: a name from SERVICE_BITS (NODE_ prefix optional), `bit:N`, or a flag value (number or "0x..."). */
const serviceFlag = z.union([z.string(), z.number().int().positive()]).transform((v, ctx) => {
  if (typeof v === 'number') return BigInt(v);
  const name = v.trim().toUpperCase().replace(/^NODE_/, '');
  const bit = /^BIT:(\d{1,2})$/.exec(name);
  if (bit && Number(bit[1]) < 64) return 1n << BigInt(bit[1]!);
  if (/^0X[0-9A-F]{1,16}$/.test(name) && BigInt(v) > 0n) return BigInt(v);
  const named = SERVICE_BITS[name];
  if (named !== undefined) return named;
  ctx.addIssue({ code: 'custom', message: `unknown service flag ${JSON.stringify(v)}: use ${Object.keys(SERVICE_BITS).join(', ')}, bit:N or a value like 0x400` });
  return z.NEVER;
});

const addressEntry = z.string().superRefine((v, ctx) => {
  try {
    parseEntry(v.trim());
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const regex = z.string().transform((v, ctx) => {
  try {
    return new RegExp(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `bad regular expression: ${(err as Error).message}` });
    return z.NEVER;
  }
});

/** a ban duration in seconds, more than 0 */
const duration = positiveDurationSeconds;

const schema = z
  .strictObject({
    /** lowest protocol version accepted (e.g. 70016 for wtxidrelay) */
    minVersion: z.number().int().min(0).optional(),
    services: z
      .strictObject({
        required: z.array(serviceFlag).default([]),
        forbidden: z.array(serviceFlag).default([]),
      })
      .default({ required: [], forbidden: [] }),
    userAgent: z
      .strictObject({
        allow: z.array(regex).optional(),
        deny: z.array(regex).default([]),
        /** when no pattern matches: reject when only allow is given, else accept */
        default: z.enum(['accept', 'reject']).optional(),
      })
      .optional(),
    addresses: z
      .strictObject({
        allow: z.array(addressEntry).optional(),
        deny: z.array(addressEntry).default([]),
        allowFiles: z.array(z.string().min(1)).optional(),
        denyFiles: z.array(z.string().min(1)).default([]),
        /** when no entry matches: reject when only allow/allowFiles are given, else accept */
        default: z.enum(['accept', 'reject']).optional(),
      })
      .optional(),
    action: z.enum(['disconnect', 'ban']).default('disconnect'),
    /** ban duration with action: ban; default: the proxy's bans.duration */
    banDuration: duration.optional(),
  })
  .transform((o) => ({
    ...o,
    services: { required: o.services.required.reduce((a, b) => a | b, 0n), forbidden: o.services.forbidden.reduce((a, b) => a | b, 0n) },
  }));

export type PeerFilterOptions = z.output<typeof schema>;

type Reason = 'address' | 'version' | 'services_required' | 'services_forbidden' | 'user_agent';

let opts: PeerFilterOptions;
let allowList: AddressList | null = null;
let denyList = new AddressList();
let rejected: HookCounter | null = null;

function reject(reason: Reason, detail: string): HookResult {
  rejected?.inc({ reason, action: opts.action });
  const why = `peer-filter: ${detail}`;
  if (opts.action === 'ban') return { action: 'drop', ban: opts.banDuration === undefined ? { reason: why } : { reason: why, duration: opts.banDuration } };
  return { action: 'drop', disconnect: why };
}

/**
 * allow match → accept; deny match → reject; neither → `fallback`, which defaults to reject when
 * only an allow-list is given (an allow-only list), else accept (the allow-list holds exceptions
 * to the deny-list).
 */
function decide<T>(value: T, allow: ((v: T) => boolean) | null, deny: ((v: T) => boolean) | null, fallback: 'accept' | 'reject' | undefined): boolean {
  if (allow?.(value)) return true;
  if (deny?.(value)) return false;
  return (fallback ?? (allow && !deny ? 'reject' : 'accept')) === 'accept';
}

/** The address lists, at accept: a refused peer never gets a backend connection. */
function checkAddress(address: string): AcceptResult | undefined {
  const a = opts.addresses;
  if (!a) return undefined;
  const denyGiven = a.deny.length > 0 || a.denyFiles.length > 0;
  const ok = decide(address, allowList ? (v) => allowList!.has(v) : null, denyGiven ? (v) => denyList.has(v) : null, a.default);
  if (ok) return undefined;
  rejected?.inc({ reason: 'address', action: opts.action === 'ban' ? 'ban' : 'refuse' });
  const why = `peer-filter: address ${address} is not accepted`;
  if (opts.action === 'ban') return { ban: opts.banDuration === undefined ? { reason: why } : { reason: why, duration: opts.banDuration } };
  return { refuse: why };
}

function hasVersionRules(o: PeerFilterOptions): boolean {
  return o.minVersion !== undefined || o.services.required !== 0n || o.services.forbidden !== 0n || o.userAgent !== undefined;
}

function checkVersion(peer: HookPeer): HookResult | undefined {
  if (opts.minVersion !== undefined && (peer.version ?? -1) < opts.minVersion) {
    return reject('version', `protocol version ${peer.version ?? 'unknown'} is below ${opts.minVersion}`);
  }
  const { required, forbidden } = opts.services;
  if (required || forbidden) {
    const s = peer.services;
    if (s === null && (required || forbidden)) return reject('services_required', 'services unknown (version not decodable)');
    if (s !== null && (s & required) !== required) return reject('services_required', `services 0x${s.toString(16)} lack required 0x${required.toString(16)}`);
    if (s !== null && (s & forbidden) !== 0n) return reject('services_forbidden', `services 0x${s.toString(16)} include forbidden 0x${(s & forbidden).toString(16)}`);
  }
  const ua = opts.userAgent;
  if (ua) {
    const agent = peer.userAgent ?? '';
    const ok = decide(agent, ua.allow ? (v) => ua.allow!.some((r) => r.test(v)) : null, ua.deny.length ? (v) => ua.deny.some((r) => r.test(v)) : null, ua.default);
    if (!ok) return reject('user_agent', `user agent ${JSON.stringify(agent.slice(0, 256))} is not accepted`);
  }
  return undefined;
}

export default defineHook<PeerFilterOptions>({
  apiVersion: HOOK_API_VERSION,
  name: 'peer-filter',
  wants: (o) => (hasVersionRules(o) ? { inbound: ['version'] } : {}),
  options: schema,
  async init(options, ctx) {
    opts = options;
    const a = options.addresses;
    denyList = new AddressList();
    allowList = a && (a.allow || a.allowFiles) ? new AddressList() : null;
    if (a) {
      for (const e of a.deny) denyList.add(e);
      for (const e of a.allow ?? []) allowList!.add(e);
      for (const f of a.denyFiles) await loadListFile(f, denyList);
      for (const f of a.allowFiles ?? []) await loadListFile(f, allowList!);
    }
    rejected = ctx.metrics.counter('peer_filter_rejected_total', 'Peers rejected, by reason and action', ['reason', 'action']);
    const entries: HookGauge = ctx.metrics.gauge('peer_filter_list_entries', 'Entries in the address lists (options and files)', ['list']);
    entries.set(denyList.size, { list: 'deny' });
    entries.set(allowList?.size ?? 0, { list: 'allow' });
    ctx.log.info('peer filter loaded', { denyEntries: denyList.size, allowEntries: allowList?.size ?? null });
  },
  onAccept(conn) {
    return checkAddress(conn.address);
  },
  onMessage(msg, peer) {
    // only the first version counts; bitcoind disconnects a peer that sends a second one
    if (msg.direction !== 'inbound' || msg.command !== 'version') return undefined;
    return checkVersion(peer);
  },
});
