/**
 * Log lines a peer can trigger frame by frame, rate-limited per peer and reason: at most
 * `perWindow` lines of one reason per window, then one "suppressed K similar lines" line when
 * the window rolls over (or the session ends). A peer's bytes must never turn into more bytes
 * of log than it sent. Every line, written or not, is counted.
 */
import type { Logger } from 'pino';

export type LimitedLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LogLineObserver {
  /** `reason` is the part of the key before ':' (bounded: hook names are not label values) */
  logLine(reason: string, outcome: 'written' | 'suppressed'): void;
}

interface Window {
  start: number;
  written: number;
  suppressed: number;
  level: LimitedLevel;
}

/** Reasons tracked per peer; more (only possible through many hooks) share one entry. */
const MAX_KEYS = 32;

export class LogLimiter {
  readonly #windows = new Map<string, Window>();

  constructor(
    private readonly log: Logger,
    private readonly perWindow: number,
    private readonly observer: LogLineObserver,
    private readonly windowMs = 60_000,
  ) {}

  /** Write `msg` unless this peer already wrote `perWindow` lines of `key` in this window. */
  line(key: string, level: LimitedLevel, fields: Record<string, unknown>, msg: string): void {
    if (!this.log.isLevelEnabled(level)) return;
    const now = Date.now();
    if (!this.#windows.has(key) && this.#windows.size >= MAX_KEYS) key = 'other';
    let w = this.#windows.get(key);
    if (!w) this.#windows.set(key, (w = { start: now, written: 0, suppressed: 0, level }));
    else if (now - w.start >= this.windowMs) {
      this.#summary(key, w);
      w.start = now;
      w.written = 0;
    }
    const reason = metricReason(key);
    if (w.written >= this.perWindow) {
      w.suppressed++;
      this.observer.logLine(reason, 'suppressed');
      return;
    }
    w.written++;
    this.observer.logLine(reason, 'written');
    this.log[level]({ ...fields, logReason: key }, msg);
  }

  /** The session ends: say what was held back. */
  flush(): void {
    for (const [key, w] of this.#windows) this.#summary(key, w);
  }

  #summary(key: string, w: Window): void {
    if (w.suppressed === 0) return;
    this.log[w.level]({ logReason: key, suppressed: w.suppressed, windowSeconds: this.windowMs / 1000 }, `suppressed ${w.suppressed} similar lines`);
    w.suppressed = 0;
  }
}

function metricReason(key: string): string {
  const i = key.indexOf(':');
  return i < 0 ? key : key.slice(0, i);
}
