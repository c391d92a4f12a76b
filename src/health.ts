/**
 * Liveness and readiness, shared by the metrics listener and the admin API. Ready means the
 * proxy listens and the backend answered a connection (backendUp === true): null (never tried
 * yet) is not ready, so an orchestrator does not route peers to a proxy whose bitcoind may
 * not exist.
 */
export interface HealthSource {
  addresses(): readonly unknown[];
  readonly backendUp: boolean | null;
  /** null: no shared store configured; false: it is unreachable (degraded, still serving) */
  readonly storeUp?: boolean | null;
  readonly settings: { readonly backend: { host: string; port: number } };
  /** the ban list, for bhp_bans at scrape time (a ban that runs out changes nothing else) */
  readonly bans?: { readonly size: number };
}

export interface Readiness {
  ready: boolean;
  /** null: no backend connection was attempted yet */
  backendUp: boolean | null;
  listening: readonly unknown[];
  /**
   * The shared store (Redis) is unreachable: still ready (peers are served on local state), but
   * bans and grants made elsewhere do not arrive meanwhile. Only present with a shared store.
   */
  degraded?: boolean;
  store?: 'up' | 'down';
}

export function readiness(source: HealthSource): Readiness {
  const listening = source.addresses();
  const backendUp = source.backendUp;
  const r: Readiness = { ready: listening.length > 0 && backendUp === true, backendUp, listening };
  const storeUp = source.storeUp ?? null;
  if (storeUp !== null) {
    r.degraded = !storeUp;
    r.store = storeUp ? 'up' : 'down';
  }
  return r;
}
