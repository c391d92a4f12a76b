import type { HookResult, OutgoingMessage } from './api.js';
import { DURATION_HINT, parseDuration } from './units.js';

/** A hook broke its contract: thrown, malformed result, or past its time budget. */
export class HookFault extends Error {
  override readonly name = 'HookFault';
  constructor(
    readonly hook: string,
    readonly kind: 'throw' | 'malformed' | 'timeout' | 'invalid_message',
    message: string,
  ) {
    super(`hook "${hook}": ${message}`);
  }
}

const KEYS = new Set(['action', 'replace', 'push', 'misbehave', 'ban', 'disconnect', 'log']);

/** Validates what a hook returned; returns null for "pass", throws HookFault('malformed'). */
export function checkResult(hook: string, r: unknown): HookResult | null {
  if (r === undefined || r === null) return null;
  const bad = (why: string): never => {
    throw new HookFault(hook, 'malformed', `returned a malformed result: ${why}`);
  };
  if (typeof r !== 'object' || Array.isArray(r)) bad(`expected an object or nothing, got ${typeof r}`);
  const o = r as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) bad(`unknown field "${k}"`);
  if (o.action !== undefined && o.action !== 'pass' && o.action !== 'drop') bad(`action must be "pass" or "drop"`);
  if (o.replace !== undefined) checkOutgoing(o.replace, 'replace', bad);
  if (o.push !== undefined) {
    if (!Array.isArray(o.push)) bad('push must be an array of { command, payload }');
    (o.push as unknown[]).forEach((m, i) => checkOutgoing(m, `push[${i}]`, bad));
  }
  if (o.misbehave !== undefined) {
    const m = o.misbehave as { points?: unknown; reason?: unknown } | number;
    const points = typeof m === 'number' ? m : m?.points;
    if (typeof points !== 'number' || !Number.isFinite(points) || points < 0) bad('misbehave must be a non-negative number or { points, reason }');
    if (typeof m === 'object' && typeof m.reason !== 'string') bad('misbehave.reason must be a string');
  }
  if (o.ban !== undefined) checkBan(o.ban, bad);
  if (o.disconnect !== undefined && o.disconnect !== true && typeof o.disconnect !== 'string') bad('disconnect must be true or a reason string');
  if (o.log !== undefined && typeof o.log !== 'string' && (typeof o.log !== 'object' || typeof (o.log as { msg?: unknown }).msg !== 'string')) {
    bad('log must be a string or { level?, msg }');
  }
  return o as HookResult;
}

function checkOutgoing(m: unknown, what: string, bad: (why: string) => never): asserts m is OutgoingMessage {
  if (!m || typeof m !== 'object') bad(`${what} must be { command, payload }`);
  const o = m as { command?: unknown; payload?: unknown };
  if (typeof o.command !== 'string') bad(`${what}.command must be a string`);
  if (o.payload !== undefined && !(o.payload instanceof Uint8Array)) bad(`${what}.payload must be a Buffer or Uint8Array`);
}

/**
 * `true` or `{ reason, duration? }`; a duration given must be more than 0: 0 or an unreadable one
 * made no ban (the ban list makes none of 0 ms) and no disconnect, and the frame went on.
 */
export function checkBan(ban: unknown, bad: (why: string) => never): void {
  if (ban === true) return;
  if (typeof ban !== 'object' || ban === null || typeof (ban as { reason?: unknown }).reason !== 'string') bad('ban must be true or { reason, duration? }');
  const d = (ban as { duration?: unknown }).duration;
  if (d !== undefined && !((parseDuration(d) ?? 0) > 0)) bad(`ban.duration must be more than 0: ${DURATION_HINT}, got ${JSON.stringify(d)}`);
}

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}
