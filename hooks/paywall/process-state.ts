/**
 * What one paywall counts for the whole process, which a reload must not reset: every load gets
 * a fresh instance of the hook module (a reload picks up new code), while this module, imported
 * by it, is loaded once. Without it a reload gave every address its invoice bounds and rate
 * tokens back, and the free peers a second daily upload budget.
 */
import { LRUCache } from 'lru-cache';

export interface OpenInvoice {
  address: string;
  /** unix seconds */
  expiresAt: number;
}

export interface PaywallProcessState {
  /** open invoices (and slots reserved for ones being created): hash → address and expiry */
  readonly openAll: Map<string, OpenInvoice>;
  /** per address: hash → expiry (unix s) */
  readonly openByAddress: Map<string, Map<string, number>>;
  /** invoice requests per address: a token bucket each */
  readonly buckets: LRUCache<string, { tokens: number; at: number }>;
  /** blocks served to free peers on UTC day `day` */
  readonly upload: { day: number; bytes: number };
  /** expired unclaimed invoices to ask the backend about: hash → when (unix s) */
  readonly checks: Map<string, number>;
}

const byKey = new Map<string, PaywallProcessState>();

/** The state of the paywall that `key` names (its chain name and store); made on first use. */
export function paywallProcessState(key: string): PaywallProcessState {
  let s = byKey.get(key);
  if (!s) {
    s = { openAll: new Map(), openByAddress: new Map(), buckets: new LRUCache({ max: 100_000 }), upload: { day: 0, bytes: 0 }, checks: new Map() };
    byKey.set(key, s);
  }
  return s;
}
