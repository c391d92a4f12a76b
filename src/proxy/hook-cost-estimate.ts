/**
 * What an untimed frame's hooks are charged to the peer's hook budget (see Pipeline): the
 * median of the last few timed frames' chain time, not the last one alone. One sample is a
 * frame's chain, about 100 ns; a thread preemption or a page fault landing in it reads as
 * microseconds, and multiplied by the frames until the next sample that throttled a peer
 * through pass-through hooks for a second. A sample far above the median is not trusted
 * either way: the next SAMPLE_EVERY frames are timed one by one (charged exactly, and the
 * estimate follows them), so a hook that is costly only on some frames is charged for them
 * whenever a sample catches one, and a chain that got costlier for good is estimated anew.
 */
export const SAMPLE_EVERY = 128;
/** a chain slower than this (wall time, ms) is timed on every frame */
export const CHEAP_MS = 0.05;
const WINDOW = 7;
/** a sample over 4x the median plus this (ms) starts a window of exact timing */
const OUTLIER_SLACK_MS = 0.001;

export class HookCostEstimate {
  /** ms charged for each untimed frame */
  perFrame = 0;
  /**
   * The last WINDOW samples, then their sorted copy: made at the first sample, since every
   * pipeline has an estimate and most (an idle peer's, a direction no hook reads) never sample.
   */
  #samples: Float64Array | null = null;
  #n = 0;
  #next = 0;
  /** frames still to time one by one */
  #exactLeft = 0;

  /**
   * A timed frame: `chargedMs` of hook time (clock reads taken off), `wallMs` of chain wall time.
   * Returns whether the frames after it may run untimed.
   */
  sample(chargedMs: number, wallMs: number): boolean {
    if (wallMs >= CHEAP_MS || (this.#exactLeft === 0 && this.#n >= 3 && chargedMs > 4 * this.perFrame + OUTLIER_SLACK_MS)) {
      this.#exactLeft = SAMPLE_EVERY;
      return false;
    }
    // inside a window every frame is timed: its samples are what the chain costs now
    (this.#samples ??= new Float64Array(2 * WINDOW))[this.#next] = chargedMs;
    this.#next = (this.#next + 1) % WINDOW;
    if (this.#n < WINDOW) this.#n++;
    this.perFrame = this.#median();
    if (this.#exactLeft > 0) {
      this.#exactLeft--;
      return false;
    }
    return true;
  }

  /** samples taken so far (for tests: an idle pipeline takes none and allocates nothing) */
  get sampled(): boolean {
    return this.#samples !== null;
  }

  #median(): number {
    const n = this.#n;
    const s = this.#samples!;
    for (let i = 0; i < n; i++) {
      const v = s[i]!;
      let j = i;
      for (; j > 0 && s[WINDOW + j - 1]! > v; j--) s[WINDOW + j] = s[WINDOW + j - 1]!;
      s[WINDOW + j] = v;
    }
    return s[WINDOW + (n >> 1)]!;
  }
}
