/**
 * Helpers shared by the shipped hooks (message-filter, rate-limit, peer-filter): the action
 * an operator chooses for a rule, command names, metric labels, and options-dependent `wants`.
 * Like the hooks themselves this imports only the public hook API and npm packages.
 */
import { z } from 'zod';
import { codec, type HookResult } from '../../src/hooks/index.js';

/** A P2P command as it can appear in the 12-byte command field. */
export const commandName = z
  .string()
  .min(1)
  .max(12)
  .regex(/^[\x21-\x7e]+$/, 'a P2P command is 1 to 12 printable ASCII characters without spaces');

/**
 * What to do with a message a rule catches. Every action drops the message; `disconnect` also
 * closes the connection, `{ misbehave: N }` also adds N points to the peer's misbehaviour score
 * (the proxy bans the peer at its configured threshold, `bans.threshold`).
 */
export const actionSchema = z.union([z.enum(['drop', 'disconnect']), z.strictObject({ misbehave: z.number().int().min(1).max(1_000_000) })], {
  error: 'expected "drop", "disconnect" or { misbehave: N }',
});
export type Action = z.infer<typeof actionSchema>;

/** The metric label of an action: drop, disconnect or misbehave. */
export function actionLabel(a: Action): 'drop' | 'disconnect' | 'misbehave' {
  return typeof a === 'string' ? a : 'misbehave';
}

/** The hook result that carries out `a`; `reason` goes to the log and the disconnect/misbehaviour reason. */
export function applyAction(a: Action, reason: string): HookResult {
  if (a === 'drop') return { action: 'drop', log: { level: 'debug', msg: reason } };
  if (a === 'disconnect') return { action: 'drop', disconnect: reason };
  return { action: 'drop', misbehave: { points: a.misbehave, reason } };
}

let known: Set<string> | null = null;

/**
 * A low-cardinality label for a command: the command itself when the operator listed it or the
 * codec knows it, else `other` (peers can send any 12 bytes as a command).
 */
export function commandLabel(command: string, listed: ReadonlySet<string>): string {
  known ??= new Set(codec.knownCommands());
  return listed.has(command) || known.has(command) ? command : 'other';
}

/** Seconds: a number, or a string like "15m", "90s", "2h". */
export const seconds = z.union([
  z.number().nonnegative(),
  z.string().transform((s, ctx) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(s);
    if (!m) {
      ctx.addIssue({ code: 'custom', message: `expected a duration like 15m, 90s or 900, got "${s}"` });
      return z.NEVER;
    }
    const scale = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
    return Number(m[1]) * scale;
  }),
]);

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** "30m", "24h", "7d" or a number of seconds → seconds (what HookResult.ban.duration takes as a number). */
export const duration = z.union([z.string(), z.number().positive()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/i.exec(v);
  if (m && Number(m[1]) > 0) return Number(m[1]) * UNIT_SECONDS[(m[2] ?? 's').toLowerCase()]!;
  ctx.addIssue({ code: 'custom', message: `expected a duration like 30m, 24h, 7d or a number of seconds, got ${JSON.stringify(v)}` });
  return z.NEVER;
});
