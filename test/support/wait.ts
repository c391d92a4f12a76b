/** Polling helpers for tests against real processes, with timeout messages that say what was awaited. */
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

export interface WaitOptions {
  /** poll interval in ms (default 50) */
  intervalMs?: number;
}

/**
 * Poll `predicate` until it returns a truthy value (which is returned) or `timeoutMs` passes.
 * A predicate that throws counts as "not yet"; its last error is quoted in the timeout message,
 * which also names `what` was awaited and for how long, e.g.
 * `timed out after 10000 ms waiting for litecoind B to reach height 5 (last error: ...)`.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const interval = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let lastValue: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      lastValue = value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail =
        lastError !== undefined
          ? ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`
          : ` (last value: ${describe(lastValue)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(Math.min(interval, Math.max(1, deadline - Date.now())));
  }
}

function describe(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.length > 200 ? `${text.slice(0, 200)}...` : text;
  } catch {
    return String(value);
  }
}
