/**
 * "Did you mean": the nearest known word to a typo, and the keys a zod schema knows at a path
 * (for config keys and hook options alike). Imports nothing of ours.
 */

/**
 * The candidate nearest to `word` (case-insensitive edit distance at most 2, and under half the
 * shorter word: "k0" is not a typo of "v2"), for "did you mean".
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: { c: string; d: number } | undefined;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d <= 2 && d * 2 < Math.min(word.length, c.length) && (!best || d < best.d)) best = { c, d };
  }
  return best?.c;
}

/** Levenshtein distance, two rows. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** The slice of a zod 4 schema's definition we walk (any object with `_zod.def`; anything else knows no keys). */
interface Def {
  type?: string;
  shape?: Record<string, unknown>;
  innerType?: unknown;
  in?: unknown;
  out?: unknown;
  options?: readonly unknown[];
  element?: unknown;
  valueType?: unknown;
  left?: unknown;
  right?: unknown;
  getter?: () => unknown;
}

function defOf(schema: unknown): Def | null {
  const def = (schema as { _zod?: { def?: unknown } } | null)?._zod?.def;
  return def && typeof def === 'object' ? (def as Def) : null;
}

/**
 * The schemas a wrapper, pipe, union, intersection or lazy schema stands for, to look through;
 * null for any other type (a leaf, or an object, array or record the callers read themselves).
 */
function throughOf(def: Def): readonly unknown[] | null {
  switch (def.type) {
    case 'default':
    case 'prefault':
    case 'optional':
    case 'nullable':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return [def.innerType];
    case 'pipe':
      return [def.in, def.out];
    case 'union':
      return def.options ?? [];
    case 'intersection':
      return [def.left, def.right];
    case 'lazy':
      return def.getter ? [def.getter()] : [];
    default:
      return null;
  }
}

/** Every object schema `schema` may be at this level, looking through wrappers, pipes and unions. */
function objectsOf(schema: unknown, depth = 0): Def[] {
  const def = defOf(schema);
  if (!def || depth > 32) return [];
  if (def.type === 'object') return [def];
  return throughOf(def)?.flatMap((s) => objectsOf(s, depth + 1)) ?? [];
}

/** The schemas under `key` (a property, or an element of an array or record). */
function childrenOf(schema: unknown, key: string | number, depth = 0): unknown[] {
  const def = defOf(schema);
  if (!def || depth > 32) return [];
  switch (def.type) {
    case 'object':
      return typeof key === 'string' && def.shape && Object.hasOwn(def.shape, key) ? [def.shape[key]] : [];
    case 'array':
      return typeof key === 'number' ? [def.element] : [];
    case 'record':
      return [def.valueType];
    default:
      return throughOf(def)?.flatMap((s) => childrenOf(s, key, depth + 1)) ?? [];
  }
}

/** The keys a zod schema accepts in the object at `path` (empty when it cannot tell). */
export function knownKeysAt(schema: unknown, path: readonly PropertyKey[]): string[] {
  let level: unknown[] = [schema];
  for (const k of path) {
    if (typeof k === 'symbol') return [];
    level = level.flatMap((s) => childrenOf(s, k));
  }
  return [...new Set(level.flatMap((s) => objectsOf(s)).flatMap((d) => Object.keys(d.shape ?? {})))];
}

/** "unknown key", with "(did you mean X?)" when a known key is near. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const near = closest(key, known);
  return near ? `unknown key (did you mean ${near}?)` : 'unknown key';
}
