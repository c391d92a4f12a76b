/**
 * example-mempool-guard: the worked example of docs/hooks.md. Small, but it shows every part
 * of the hook API a module usually needs:
 *   - an options schema (zod), validated at load with errors that name the key;
 *   - `wants` per direction, so the frames it does not care about stay on the fast path;
 *   - per-peer state: it counts the peer's messages per command in `peer.state`, and reads a
 *     tier that another hook (e.g. a paywall) may have written there;
 *   - a result that combines several actions: drop + misbehave + log;
 *   - its own Prometheus counter through ctx.metrics (bhp_hook_example_mempool_dropped_total);
 *   - a private x: command (`x:stats`) answered with a push, built with the codec.
 *
 * What it does: a `mempool` request makes a node send the inventory of its whole mempool, which
 * is costly; this hook lets it through only for peers that have a tier, drops it for the others
 * (bitcoind never sees it) and adds misbehaviour points, so a peer that insists gets banned at
 * the proxy's ban threshold.
 *
 * It imports only the public hook API and an npm package, like any third-party module.
 */
import { z } from 'zod';
import { codec, defineHook, HOOK_API_VERSION, type HookCounter, type HookPeer } from '../src/hooks/index.js';

const NAME = 'example-mempool-guard';
/** the per-peer state key of the counts (namespaced by the module name) */
export const COUNTS_KEY = `${NAME}.counts`;

const Options = z.strictObject({
  /** the per-peer state key another hook (a paywall) sets for peers that may ask for the mempool; rate-limit reads the same key */
  tierKey: z.string().min(1).default('tier'),
  /** misbehaviour points per refused request; 0 only drops */
  points: z.number().int().min(0).max(100).default(10),
  /** commands to count per peer (x:stats reports them); every other command stays on the fast path */
  count: z.array(z.string().min(1).max(12)).default(['ping', 'inv', 'getdata', 'tx', 'mempool']),
});
export type ExampleMempoolGuardOptions = z.input<typeof Options>;

// Every load (start, reload) imports a fresh instance of this module, so module-level
// variables belong to one chain. They are set in init().
let options: z.output<typeof Options>;
let dropped: HookCounter;

/** The peer's counts, created on first use. */
function countsOf(peer: HookPeer): Map<string, number> {
  let counts = peer.state.get(COUNTS_KEY) as Map<string, number> | undefined;
  if (!counts) {
    counts = new Map();
    peer.state.set(COUNTS_KEY, counts);
  }
  return counts;
}


export default defineHook({
  apiVersion: HOOK_API_VERSION,
  name: NAME,
  options: Options,
  // called with the validated options: only mempool and the counted commands leave the fast path
  wants: (o) => ({ inbound: [...new Set(['mempool', ...o.count])] }),

  init(opts, ctx) {
    options = opts;
    // registered under the name bhp_hook_example_mempool_dropped_total
    dropped = ctx.metrics.counter('example_mempool_dropped_total', 'mempool requests dropped by example-mempool-guard');
    ctx.log.info('mempool guard ready', { tierKey: options.tierKey, points: options.points });
  },

  onMessage(msg, peer) {
    const counts = countsOf(peer);
    counts.set(msg.command, (counts.get(msg.command) ?? 0) + 1);
    if (msg.command !== 'mempool' || peer.state.get(options.tierKey) !== undefined) return; // pass
    dropped.inc();
    return {
      action: 'drop',
      ...(options.points > 0 ? { misbehave: { points: options.points, reason: 'mempool request without a tier' } } : {}),
      log: { level: 'info', msg: 'dropped a mempool request from a peer without a tier', requests: counts.get('mempool') },
    };
  },

  commands: {
    /** x:stats → x:stats with a JSON object { command: count } as a var_str (peers that announced X_FEATURE_ID only) */
    'x:stats'(_msg, peer) {
      const json = JSON.stringify(Object.fromEntries(countsOf(peer)));
      return { push: [{ command: 'x:stats', payload: new codec.PayloadWriter(json.length + 9).varString(json).finish() }] };
    },
  },
});
