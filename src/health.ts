/**
 * Liveness and readiness, shared by the metrics listener and the admin API. Ready means the
 * proxy listens and the backend answered a connection (backendUp === true): null (never tried
 * yet) is not ready, so an orchestrator does not route peers to a proxy whose bitcoind may
 * not exist.
 */
export interface HealthSource {
  addresses(): readonly unknown[];
  readonly backendUp: boolean | null;
  readonly settings: { readonly backend: { host: string; port: number } };
}

export interface Readiness {
  ready: boolean;
  /** null: no backend connection was attempted yet */
  backendUp: boolean | null;
  listening: readonly unknown[];
}

export function readiness(source: HealthSource): Readiness {
  const listening = source.addresses();
  const backendUp = source.backendUp;
  return { ready: listening.length > 0 && backendUp === true, backendUp, listening };
}
