/**
 * rate-limit: token buckets on inbound messages (peer → bitcoind), per peer and per command, and
 * per source address across all its sessions. The limits come from a tier that another hook may
 * set in peer.state (key `tierKey`, default `tier`); peers without a known tier get `default`.
 * Documented in docs/hooks/rate-limit.md.
 *
 * Cost: `wants` lists only the commands some tier limits, unless a tier limits `*` (all
 * messages), which takes every inbound frame off the raw fast path.
 */
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import { defineHook, HOOK_API_VERSION, type HookCounter, type HookGauge, type HookPeer, type HookResult } from '../src/hooks/index.js';
import { actionLabel, actionSchema, applyAction, commandName, type Action } from './lib/common.js';

/** `*` in a limits map: one bucket that every inbound message of the peer (or address) draws from. */
export const ALL = '*';

const ruleSchema = z
  .strictObject({
    /** tokens (messages) per second added to the bucket; may be fractional (0.1 = one per 10 s) */
    rate: z.number().positive(),
    /** bucket size: how many messages may come at once after a quiet period; default max(1, rate) */
    burst: z.number().int().min(1).optional(),
    /** overrides the hook's action for this rule */
    action: actionSchema.optional(),
  })
  .transform((r) => ({ rate: r.rate, burst: r.burst ?? Math.max(1, Math.ceil(r.rate)), action: r.action }));

const limitsSchema = z.record(z.union([commandName, z.literal(ALL)]), ruleSchema);

const tierSchema = z.strictObject({
  /** per peer (one connection) */
  peer: limitsSchema.default({}),
  /** per source address, across all its connections */
  address: limitsSchema.default({}),
});

const baseSchema = z
  .strictObject({
    tiers: z.record(z.string().min(1), tierSchema),
    /** peer.state key another hook sets to a tier name */
    tierKey: z.string().min(1).default('tier'),
    action: actionSchema.default('drop'),
    /** how many source addresses to keep buckets for (least recently used go first) */
    maxAddresses: z.number().int().min(1).max(10_000_000).default(100_000),
  })
  .superRefine((o, ctx) => {
    if (!o.tiers.default) ctx.addIssue({ code: 'custom', path: ['tiers', 'default'], message: 'a tier named "default" is required (peers without a tier use it)' });
  });

type Rule = { rate: number; burst: number; action: Action };
type Limits = ReadonlyMap<string, Rule>;
interface Tier {
  peer: Limits;
  address: Limits;
}
export interface RateLimitOptions {
  tiers: ReadonlyMap<string, Tier>;
  tierKey: string;
  maxAddresses: number;
}

interface Bucket {
  tokens: number;
  at: number;
}
type Buckets = Map<string, Bucket>;

const schema = baseSchema.transform((o): RateLimitOptions => {
  const tiers = new Map<string, Tier>();
  const toLimits = (l: Record<string, { rate: number; burst: number; action: Action | undefined }>): Limits => {
    const m = new Map<string, Rule>();
    for (const [cmd, r] of Object.entries(l)) {
      m.set(cmd, { rate: r.rate, burst: r.burst, action: r.action ?? o.action });
    }
    return m;
  };
  for (const [name, t] of Object.entries(o.tiers)) tiers.set(name, { peer: toLimits(t.peer), address: toLimits(t.address) });
  return { tiers, tierKey: o.tierKey, maxAddresses: o.maxAddresses };
});

/**
 * Take one token from the bucket `key` of `buckets` under `rule`, refilling first. A bucket
 * starts full. Rules may change between calls (the peer's tier changed): the refill uses the
 * current rate and caps at the current burst.
 */
export function take(buckets: Buckets, key: string, rule: Rule, now: number): boolean {
  let b = buckets.get(key);
  if (!b) {
    b = { tokens: rule.burst, at: now };
    buckets.set(key, b);
  } else {
    // `now` is the wall clock, which NTP may step back: a negative interval would drain the bucket for as long as the step
    b.tokens = Math.min(rule.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * rule.rate);
    b.at = now;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

let opts: RateLimitOptions;
/** a peer's buckets belong to the tier they were filled for: a new tier starts with its own, full */
let perPeer = new WeakMap<HookPeer, { tier: string; buckets: Buckets }>();
let perAddress: LRUCache<string, Buckets>;
let limited: HookCounter | null = null;
let addressesGauge: HookGauge | null = null;

function tierOf(peer: HookPeer): [string, Tier] {
  const v = peer.state.get(opts.tierKey);
  if (typeof v === 'string') {
    const t = opts.tiers.get(v);
    if (t) return [v, t];
  }
  return ['default', opts.tiers.get('default')!];
}

/**
 * The first rule of `limits` (the command's own, then `*`) whose bucket is empty, or null.
 * `prefix` keeps buckets of different tiers apart in a map they share (an address's sessions).
 */
function check(limits: Limits, buckets: Buckets, command: string, now: number, prefix = ''): [string, Rule] | null {
  const own = limits.get(command);
  if (own && !take(buckets, prefix + command, own, now)) return [command, own];
  const all = limits.get(ALL);
  if (all && !take(buckets, prefix + ALL, all, now)) return [ALL, all];
  return null;
}

export default defineHook<RateLimitOptions>({
  apiVersion: HOOK_API_VERSION,
  name: 'rate-limit',
  // only the commands some tier limits leave the fast path, unless a tier limits `*`
  wants: (o) => {
    const commands = new Set<string>();
    for (const t of o.tiers.values()) for (const cmd of [...t.peer.keys(), ...t.address.keys()]) commands.add(cmd);
    return { inbound: commands.has(ALL) ? '*' : [...commands] };
  },
  options: schema,
  init(options, ctx) {
    opts = options;
    perPeer = new WeakMap();
    perAddress = new LRUCache({ max: options.maxAddresses });
    limited = ctx.metrics.counter('rate_limit_limited_total', 'Messages over a rate limit, by scope (peer or address), tier, command and action', ['scope', 'tier', 'command', 'action']);
    addressesGauge = ctx.metrics.gauge('rate_limit_addresses', 'Source addresses with rate-limit buckets');
  },
  onMessage(msg, peer): HookResult | undefined {
    const [tierName, tier] = tierOf(peer);
    const now = msg.receivedAt;
    let hit: [string, Rule] | null = null;
    let scope: 'peer' | 'address' = 'peer';
    if (tier.peer.size > 0) {
      let b = perPeer.get(peer);
      // a tier change (a peer paid, or its pass ended) gets the new tier's buckets at once, not the drained old ones
      if (!b || b.tier !== tierName) perPeer.set(peer, (b = { tier: tierName, buckets: new Map() }));
      hit = check(tier.peer, b.buckets, msg.command, now);
    }
    if (!hit && tier.address.size > 0) {
      let b = perAddress.get(peer.address);
      if (!b) {
        perAddress.set(peer.address, (b = new Map()));
        addressesGauge?.set(perAddress.size);
      }
      hit = check(tier.address, b, msg.command, now, `${tierName}\0`);
      scope = 'address';
    }
    if (!hit) return undefined;
    const [key, rule] = hit;
    limited?.inc({ scope, tier: tierName, command: key, action: actionLabel(rule.action) });
    return applyAction(rule.action, `rate-limit: ${msg.command} over the ${scope} limit for ${key} (${rule.rate}/s, burst ${rule.burst}, tier ${tierName})`);
  },
  close() {
    perAddress?.clear();
  },
});
