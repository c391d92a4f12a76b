/**
 * Helpers shared by the shipped hooks: the action an operator chooses for a rule, command names,
 * metric labels, options-dependent `wants`, and size and duration options read with the
 * proxy's one parser (as the config reads them).
 * Like the hooks themselves this imports only the public hook API and npm packages.
 */
import { z } from 'zod';
import { codec, DURATION_HINT, parseDuration, parseSize, SIZE_HINT, type HookResult } from '../../src/hooks/index.js';

/** A P2P command as it can appear in the 12-byte command field. */
export const commandName = z
  .string()
  .min(1)
  .max(12)
  .regex(/^[\x21-\x7e]+$/, 'a P2P command is 1 to 12 printable ASCII characters without spaces');

const parsedBy = (parse: (v: unknown) => number | null, hint: string) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = parse(v);
    if (n !== null) return n;
    ctx.addIssue({ code: 'custom', message: `expected ${hint}, got ${JSON.stringify(v)}` });
    return z.NEVER;
  });

/** A size option in bytes: "5MB" (SI), "512KiB" (IEC) or a number of bytes. */
export const byteSize = parsedBy(parseSize, SIZE_HINT);

/** A duration option in seconds (what HookResult.ban.duration takes as a number): "30m", "7d" or a number of seconds. */
export const durationSeconds = parsedBy(parseDuration, DURATION_HINT).transform((ms) => ms / 1000);

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

/** A duration that must be more than 0 (a pass, an expiry), in seconds. */
export const positiveDurationSeconds = durationSeconds.refine((s) => s > 0, 'a duration must be more than 0');
