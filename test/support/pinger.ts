/** A well-behaved peer's heartbeat for tests: ping every `intervalMs`, keep each round trip and each failure. */
import type { P2PClient } from './p2p-client.js';
import { sleep } from './wait.js';

export class Pinger {
  /** round trips in ms, in order */
  readonly rtts: number[] = [];
  readonly failures: string[] = [];
  #stop = false;
  readonly #loop: Promise<void>;

  constructor(
    readonly client: P2PClient,
    intervalMs = 100,
    timeoutMs = 10_000,
  ) {
    this.#loop = (async () => {
      while (!this.#stop && !client.isClosed) {
        try {
          this.rtts.push(await client.ping(timeoutMs));
        } catch (err) {
          if (!this.#stop) this.failures.push((err as Error).message);
        }
        await sleep(intervalMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
  }

  /** "n pongs, k failed, p50 x ms, p99 y ms" */
  summary(): string {
    return `${this.rtts.length} pongs, ${this.failures.length} failed, p50 ${percentile(this.rtts, 50).toFixed(1)} ms, p99 ${percentile(this.rtts, 99).toFixed(1)} ms`;
  }
}

/** Nearest-rank percentile (NaN for no values). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
