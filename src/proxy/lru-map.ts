/**
 * A Map that forgets its least recently used key once it holds more than `max`. Its memory
 * grows with use: lru-cache preallocates arrays of `max` slots (about 3 MB for the proxy's
 * three tables), resident from the start even when no peer ever connects.
 */
export class LruMap<K, V> {
  readonly #map = new Map<K, V>();

  constructor(readonly max: number) {}

  get size(): number {
    return this.#map.size;
  }

  /** the value, now the most recently used */
  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    // a Map iterates in insertion order: the first key is the least recently used
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as K);
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }
}
