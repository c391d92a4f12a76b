/**
 * message-filter: an allow-list or a deny-list of P2P commands per direction, with an action per
 * rule (drop, disconnect, or misbehave N). The feature set of bitcoin-p2p-firewall, as a hook.
 * Documented in docs/hooks/message-filter.md.
 *
 * Cost: a deny-list `wants` only the commands it lists, so every other frame of that direction
 * stays on the proxy's raw fast path. An allow-list must see every frame of its direction
 * (`wants: '*'`), which takes all of them off the fast path: a set lookup per frame, no decode.
 */
import { z } from 'zod';
import { defineHook, HOOK_API_VERSION, type Direction, type HookCounter, type HookResult } from '../src/hooks/index.js';
import { actionLabel, actionSchema, applyAction, commandLabel, commandName, type Action } from './lib/common.js';

/** In allow mode these pass unless the operator overrides `alwaysAllow`: the handshake and keep-alive. */
export const DEFAULT_ALWAYS_ALLOW = ['version', 'verack', 'ping', 'pong'] as const;

const denyEntry = z.union([commandName, z.strictObject({ command: commandName, action: actionSchema })], {
  error: 'expected a command name or { command, action }',
});

const directionSchema = z
  .strictObject({
    allow: z.array(commandName).optional(),
    deny: z.array(denyEntry).optional(),
    /** action for this direction (deny entries without their own, or commands not allowed) */
    action: actionSchema.optional(),
    alwaysAllow: z.array(commandName).optional(),
  })
  .superRefine((d, ctx) => {
    if (d.allow && d.deny) ctx.addIssue({ code: 'custom', path: ['deny'], message: 'give either allow or deny for a direction, not both' });
    if (!d.allow && !d.deny) ctx.addIssue({ code: 'custom', path: [], message: 'give allow (an allow-list) or deny (a deny-list)' });
    if (d.alwaysAllow && !d.allow) ctx.addIssue({ code: 'custom', path: ['alwaysAllow'], message: 'alwaysAllow only applies to an allow-list' });
  });

const baseSchema = z
  .strictObject({
    /** default action of every rule */
    action: actionSchema.default('drop'),
    inbound: directionSchema.optional(),
    outbound: directionSchema.optional(),
  })
  .superRefine((o, ctx) => {
    if (!o.inbound && !o.outbound) ctx.addIssue({ code: 'custom', path: [], message: 'configure inbound, outbound or both' });
  });

interface Plan {
  mode: 'allow' | 'deny';
  /** allow mode: commands that pass */
  allowed: ReadonlySet<string>;
  /** deny mode: command → action */
  denied: ReadonlyMap<string, Action>;
  /** allow mode: action for everything not allowed */
  otherwise: Action;
  /** commands named in the config (metric labels) */
  listed: ReadonlySet<string>;
}

export type MessageFilterOptions = Partial<Record<Direction, Plan>>;

const schema = baseSchema.transform((o): MessageFilterOptions => {
  const plans: MessageFilterOptions = {};
  for (const dir of ['inbound', 'outbound'] as const) {
    const d = o[dir];
    if (!d) continue;
    const action = d.action ?? o.action;
    if (d.allow) {
      const allowed = new Set([...d.allow, ...(d.alwaysAllow ?? DEFAULT_ALWAYS_ALLOW)]);
      plans[dir] = { mode: 'allow', allowed, denied: new Map(), otherwise: action, listed: allowed };
    } else {
      const denied = new Map<string, Action>();
      for (const e of d.deny ?? []) {
        if (typeof e === 'string') denied.set(e, action);
        else denied.set(e.command, e.action);
      }
      plans[dir] = { mode: 'deny', allowed: new Set(), denied, otherwise: action, listed: new Set(denied.keys()) };
    }
  }
  return plans;
});

let plans: MessageFilterOptions = {};
let filtered: HookCounter | null = null;

export default defineHook<MessageFilterOptions>({
  apiVersion: HOOK_API_VERSION,
  name: 'message-filter',
  // an allow-list sees every frame of its direction; a deny-list only the commands it lists
  wants: (plans) => ({
    inbound: plans.inbound ? (plans.inbound.mode === 'allow' ? '*' : [...plans.inbound.denied.keys()]) : [],
    outbound: plans.outbound ? (plans.outbound.mode === 'allow' ? '*' : [...plans.outbound.denied.keys()]) : [],
  }),
  options: schema,
  init(options, ctx) {
    plans = options;
    filtered = ctx.metrics.counter('message_filter_filtered_total', 'Messages the filter caught, by direction, command and action', ['direction', 'command', 'action']);
    for (const [dir, p] of Object.entries(plans)) {
      ctx.log.info('message filter', { direction: dir, mode: p.mode, commands: [...p.listed] });
    }
  },
  onMessage(msg): HookResult | undefined {
    const plan = plans[msg.direction];
    if (!plan) return undefined;
    let action: Action | undefined;
    if (plan.mode === 'deny') {
      action = plan.denied.get(msg.command);
      if (action === undefined) return undefined;
    } else {
      if (plan.allowed.has(msg.command)) return undefined;
      action = plan.otherwise;
    }
    filtered?.inc({ direction: msg.direction, command: commandLabel(msg.command, plan.listed), action: actionLabel(action) });
    return applyAction(action, `message-filter: ${msg.direction} ${JSON.stringify(msg.command)} is ${plan.mode === 'deny' ? 'denied' : 'not allowed'}`);
  },
});
