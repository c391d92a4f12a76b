import type { AcceptResult } from './api.js';
import { HookFault, checkBan } from './result.js';

/** What the chain decided for a connection before it is accepted (see HookChain.accept). */
export type AcceptDecision =
  | { kind: 'accept' }
  | { kind: 'refuse'; hook: string; reason: string }
  | { kind: 'ban'; hook: string; reason: string; duration: string | number | undefined }
  | { kind: 'fault'; fault: HookFault };

export const ACCEPTED: AcceptDecision = Object.freeze({ kind: 'accept' });

const KEYS = new Set(['refuse', 'ban', 'log']);

/** Validates what onAccept returned; null means accept. Throws HookFault('malformed'). */
export function checkAcceptResult(hook: string, r: unknown): AcceptResult | null {
  if (r === undefined || r === null) return null;
  const bad = (why: string): never => {
    throw new HookFault(hook, 'malformed', `onAccept returned a malformed result: ${why}`);
  };
  if (typeof r !== 'object' || Array.isArray(r)) bad(`expected an object or nothing, got ${typeof r}`);
  const o = r as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) bad(`unknown field "${k}" (onAccept may return refuse, ban, log)`);
  if (o.refuse !== undefined && (typeof o.refuse !== 'string' || o.refuse.length === 0)) bad('refuse must be a non-empty reason string');
  if (o.ban !== undefined) checkBan(o.ban, bad);
  if (o.log !== undefined && typeof o.log !== 'string' && (typeof o.log !== 'object' || o.log === null || typeof (o.log as { msg?: unknown }).msg !== 'string')) {
    bad('log must be a string or { level?, msg }');
  }
  return o as AcceptResult;
}
