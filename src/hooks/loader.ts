import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { COMMAND_SIZE } from '../codec/index.js';
import { HOOK_API_VERSION, type Direction, type HookChainEntry, type HookContext, type HookLogger, type HookMetrics, type HookModule, type HookPeer, type HookStore, type OutgoingMessage, type Wants, type WantsByDirection } from './api.js';
import { MemoryKv } from './memory-store.js';
import { HookChain, type ChainSettings, type HookRuntimeObserver, type LoadedHook } from './chain.js';
import { closest, knownKeysAt, unknownKeyMessage } from './suggest.js';

export { closest };

/** A module that cannot join the chain: wrong API version, bad shape, bad options, failed init. */
export class HookLoadError extends Error {
  override readonly name = 'HookLoadError';
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`hook module ${source}: ${message}`);
  }
}

export interface HookSpec {
  /** a path relative to `baseDir`, an absolute path, or a package name */
  module: string;
  options: Record<string, unknown>;
  enabled?: boolean;
  /** an already imported module object (tests, embedding); skips import() of `module` */
  instance?: unknown;
  /**
   * Where a path inside `options` was written, as "hooks.2.options.deny (line 14)"; the config
   * passes one so that an option problem names its line. Without it: "options.deny".
   */
  locate?: (optionPath: readonly (string | number)[]) => string;
}

/** What hooks may ask of the running proxy (implemented by the proxy server). */
export interface HookRuntimeHost {
  peers(): HookPeer[];
  send(peerId: number, message: OutgoingMessage): boolean;
  disconnect(peerId: number, reason: string): void;
  misbehave(peerId: number, points: number, reason: string): void;
  setPriority(peerId: number, priority: boolean): boolean;
}

export interface LoadOptions {
  baseDir: string;
  settings: ChainSettings;
  host: HookRuntimeHost;
  /** a logger bound to the hook's name */
  logger(hook: string): HookLogger;
  /** metrics registry for hook authors (prefix bhp_hook_) */
  metrics(hook: string): HookMetrics;
  observer?: HookRuntimeObserver;
  /** time budget of importing each module, and then of its init() (default 30 s) */
  loadTimeoutMs?: number;
  /** ctx.store of a hook, by its chain name (default: this load's own memory) */
  store?(hook: string): HookStore;
}

const DEFAULT_LOAD_TIMEOUT_MS = 30_000;

/** Logger and metrics that discard everything: for `check` and the test helper. */
export const silentHookServices = {
  logger: (): HookLogger => ({ debug() {}, info() {}, warn() {}, error() {} }),
  metrics: (): HookMetrics => {
    const noMetric = { inc() {}, set() {}, dec() {}, observe() {} };
    return { counter: () => noMetric, gauge: () => noMetric, histogram: () => noMetric };
  },
};

let instanceCounter = 0;

/** The keys of a HookModule: a module's default export may have no others. */
const MODULE_KEY_LIST = ['apiVersion', 'name', 'wants', 'options', 'init', 'onAccept', 'onConnect', 'onMessage', 'onDisconnect', 'commands', 'features', 'close', 'admin'] as const;
// compile-time: the list and the HookModule interface name the same keys (add a new hook point to both)
type Unlisted = Exclude<keyof HookModule<unknown>, (typeof MODULE_KEY_LIST)[number]>;
const everyKeyListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyKeyListed;
const MODULE_KEYS: ReadonlySet<string> = new Set(MODULE_KEY_LIST);

/**
 * Load the chain of the `hooks:` list with dynamic import() (our dlopen). Every load gets
 * fresh module instances (a query string on the module URL), so a reload picks up new code
 * and a module listed twice keeps two separate states. Throws HookLoadError; on failure,
 * modules already initialised are closed again.
 */
export async function loadHookChain(specs: readonly HookSpec[], opts: LoadOptions): Promise<HookChain> {
  const loaded: LoadedHook[] = [];
  const names = new Map<string, number>();
  const xOwners = new Map<string, string>();
  const entries: HookChainEntry[] = [];
  const chainInfo = (): readonly HookChainEntry[] => entries.slice();
  let memory: MemoryKv | undefined;
  try {
    for (const spec of specs) {
      if (spec.enabled === false) continue;
      const mod = spec.instance !== undefined ? checkModule(spec.module, spec.instance) : await importModule(spec.module, opts.baseDir, opts.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS);
      const count = (names.get(mod.name) ?? 0) + 1;
      names.set(mod.name, count);
      const name = count === 1 ? mod.name : `${mod.name}#${count}`;
      for (const cmd of Object.keys(mod.commands ?? {})) {
        const owner = xOwners.get(cmd);
        if (owner) throw new HookLoadError(spec.module, `x: command "${cmd}" is already registered by hook "${owner}"`);
        xOwners.set(cmd, name);
      }
      const options = validateOptions(mod, spec);
      const wants = resolveWants(mod, options, spec.module);
      const ctx: HookContext = {
        name,
        network: opts.settings.network.name,
        log: opts.logger(name),
        metrics: opts.metrics(name),
        peers: () => opts.host.peers(),
        chainInfo,
        send: (id, m) => opts.host.send(id, m),
        disconnect: (id, reason) => opts.host.disconnect(id, reason),
        misbehave: (id, points, reason) => opts.host.misbehave(id, points, reason),
        setPriority: (id, priority) => opts.host.setPriority(id, priority),
        store: opts.store ? opts.store(name) : (memory ??= new MemoryKv()).namespace(name),
      };
      const hook: LoadedHook = {
        name,
        module: mod,
        ctx,
        source: spec.module,
        wants: { inbound: wantsSet(wants.inbound), outbound: wantsSet(wants.outbound) },
      };
      if (mod.init) {
        try {
          await withDeadline(Promise.resolve(mod.init(options, ctx)), opts.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS, `${name}.init()`);
        } catch (err) {
          throw new HookLoadError(spec.module, `init() failed: ${(err as Error).message}`);
        }
      }
      loaded.push(hook);
      entries.push(Object.freeze({ name, xCommands: Object.freeze(Object.keys(mod.commands ?? {})) }));
    }
  } catch (err) {
    await new HookChain(loaded, opts.settings).close();
    throw err;
  }
  return new HookChain(loaded, opts.settings, opts.observer);
}

/**
 * import() with a deadline like init()'s: a module whose top-level await never settles would
 * otherwise leave nothing for the event loop to wait on, and node would exit 0 without a word.
 */
async function importModule(specifier: string, baseDir: string, timeoutMs: number): Promise<HookModule<unknown>> {
  const url = resolveModule(specifier, baseDir);
  const loading = import(`${url}${url.includes('?') ? '&' : '?'}bhp-instance=${++instanceCounter}`) as Promise<{ default?: unknown }>;
  let ns: { default?: unknown };
  try {
    ns = await withDeadline(loading, timeoutMs, 'import');
  } catch (err) {
    if (err instanceof DeadlineError) throw new HookLoadError(specifier, `${err.message} (a top-level await that never settles?)`);
    const code = (err as NodeJS.ErrnoException).code;
    // Node 20 and 22 cannot import TypeScript: say what to load instead
    const hint = code === 'ERR_UNKNOWN_FILE_EXTENSION' && /\.[cm]?tsx?$/.test(new URL(url).pathname) ? ' (compile it with tsc and list the .js file; see docs/hooks.md)' : '';
    throw new HookLoadError(specifier, `cannot import ${url}: ${(err as Error).message}${hint}`);
  }
  return checkModule(specifier, ns.default);
}

function resolveModule(specifier: string, baseDir: string): string {
  if (specifier.startsWith('.') || path.isAbsolute(specifier)) return pathToFileURL(path.resolve(baseDir, specifier)).href;
  if (/^[a-z]+:/i.test(specifier)) return specifier;
  // a package name: resolve from the config's directory first, then from the proxy's own
  for (const from of [path.join(baseDir, 'noop.js'), import.meta.filename ?? new URL(import.meta.url).pathname]) {
    try {
      return pathToFileURL(createRequire(from).resolve(specifier)).href;
    } catch {
      /* try the next place, then let import() report */
    }
  }
  // `hooks/x.js` names a package; the operator most likely meant the file next to the config
  const file = path.resolve(baseDir, specifier);
  const meant = existsSync(file) ? `; a file path must start with ./ or /: ./${specifier} (${file})` : '';
  throw new HookLoadError(specifier, `cannot find package "${specifier}" from ${baseDir}${meant}`);
}

function majorOf(v: string): string {
  return String(v).split('.')[0]!;
}

/** Shape and version checks; a module built for another major API version refuses to load. */
export function checkModule(source: string, m: unknown): HookModule<unknown> {
  const fail = (why: string): never => {
    throw new HookLoadError(source, why);
  };
  if (!m || typeof m !== 'object') fail('has no default export object (export default { apiVersion, name, ... })');
  const mod = m as Record<string, unknown>;
  if (typeof mod.apiVersion !== 'string' && typeof mod.apiVersion !== 'number') fail('default export has no apiVersion');
  const name = typeof mod.name === 'string' && mod.name ? mod.name : fail('default export has no name');
  if (majorOf(String(mod.apiVersion)) !== majorOf(HOOK_API_VERSION)) {
    fail(`hook "${name}" was built for hook API ${String(mod.apiVersion)}, this proxy provides ${HOOK_API_VERSION} (major versions differ)`);
  }
  // a misspelt onMesage would otherwise load and never be called
  for (const key of Object.keys(mod)) {
    if (MODULE_KEYS.has(key)) continue;
    const near = closest(key, [...MODULE_KEYS]);
    fail(`hook "${name}": the default export has unknown key ${key} ${near ? `(did you mean ${near}?)` : `(known: ${MODULE_KEY_LIST.join(', ')})`}`);
  }
  for (const fn of ['init', 'onAccept', 'onConnect', 'onMessage', 'onDisconnect', 'features', 'close'] as const) {
    if (mod[fn] !== undefined && typeof mod[fn] !== 'function') fail(`hook "${name}": ${fn} must be a function`);
  }
  if (mod.wants !== undefined && typeof mod.wants !== 'function') checkWants(name, mod.wants, fail);
  if (mod.commands !== undefined) {
    if (!mod.commands || typeof mod.commands !== 'object') fail(`hook "${name}": commands must be an object of handlers`);
    for (const [cmd, handler] of Object.entries(mod.commands as object)) {
      if (!/^x:[\x20-\x7e]+$/.test(cmd) || cmd.length > COMMAND_SIZE) fail(`hook "${name}": "${cmd}" is not an x: command of at most ${COMMAND_SIZE} printable characters`);
      if (typeof handler !== 'function') fail(`hook "${name}": the handler of ${cmd} must be a function`);
    }
  }
  if (mod.admin !== undefined) checkAdmin(name, mod.admin, fail);
  if (mod.options !== undefined && typeof (mod.options as { safeParse?: unknown }).safeParse !== 'function') {
    fail(`hook "${name}": options must be a schema with safeParse() (a zod schema, for example)`);
  }
  return mod as unknown as HookModule<unknown>;
}

/** `"METHOD route"` keys of a module's admin routes (served at /hooks/<name>/<route>). */
export const ADMIN_ROUTE_KEY = /^(GET|POST|PUT|DELETE) ([a-z0-9][a-z0-9_-]{0,63})$/;

function checkAdmin(name: string, admin: unknown, fail: (why: string) => never): void {
  if (!admin || typeof admin !== 'object') fail(`hook "${name}": admin must be an object of routes`);
  for (const [key, route] of Object.entries(admin as object)) {
    if (!ADMIN_ROUTE_KEY.test(key)) fail(`hook "${name}": admin route "${key}" is not "METHOD route" (GET, POST, PUT or DELETE; route of a-z 0-9 - _)`);
    const r = route as { handler?: unknown; input?: { safeParse?: unknown } } | null;
    const ok = typeof route === 'function' || (r !== null && typeof r === 'object' && typeof r.handler === 'function' && (r.input === undefined || typeof r.input?.safeParse === 'function'));
    if (!ok) fail(`hook "${name}": admin route "${key}" must be a handler function or { input?: schema, handler }`);
  }
}

function checkWants(name: string, w: unknown, fail: (why: string) => never): asserts w is WantsByDirection {
  if (!w || typeof w !== 'object') fail(`hook "${name}": wants must be { inbound?, outbound? } or a function of the options returning that`);
  for (const [dir, v] of Object.entries(w as object)) {
    if (dir !== 'inbound' && dir !== 'outbound') fail(`hook "${name}": wants has unknown direction "${dir}"`);
    if (v !== '*' && !(Array.isArray(v) && v.every((c) => typeof c === 'string'))) fail(`hook "${name}": wants.${dir} must be "*" or a list of commands`);
  }
}

/** The hook's wants, after its options are known. */
function resolveWants(mod: HookModule<unknown>, options: unknown, source: string): WantsByDirection {
  const fail = (why: string): never => {
    throw new HookLoadError(source, why);
  };
  let w: unknown = mod.wants;
  if (typeof w === 'function') {
    try {
      w = (w as (o: unknown) => unknown)(options);
    } catch (err) {
      fail(`hook "${mod.name}": wants(options) threw: ${(err as Error).message}`);
    }
    checkWants(mod.name, w, fail);
  }
  return (w ?? {}) as WantsByDirection;
}

function validateOptions(mod: HookModule<unknown>, spec: HookSpec): unknown {
  if (!mod.options) return spec.options;
  const r = mod.options.safeParse(spec.options ?? {});
  if (r.success) return r.data;
  const at = spec.locate ?? ((p: readonly (string | number)[]) => (p.length ? ['options', ...p].join('.') : 'options.(root)'));
  const issues = r.error.issues.flatMap((issue) => {
    const i = issue as typeof issue & { code?: string; keys?: unknown };
    const p = i.path.filter((k): k is string | number => typeof k !== 'symbol');
    // each unknown key at its own line, with the nearest key the hook knows (a zod schema tells us which)
    if (i.code === 'unrecognized_keys' && Array.isArray(i.keys)) return i.keys.map((k) => `${at([...p, String(k)])}: ${unknownKeyMessage(String(k), knownKeysAt(mod.options, p))}`);
    return [`${at(p)}: ${i.message}`];
  });
  throw new HookLoadError(spec.module, `hook "${mod.name}" has invalid options: ${issues.join('; ')}`);
}

function wantsSet(w: Wants | undefined): ReadonlySet<string> | '*' | null {
  if (w === undefined) return null;
  if (w === '*') return '*';
  return w.length ? new Set(w) : null;
}

class DeadlineError extends Error {}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    // a ref'd timer: it is what keeps the process alive while `p` waits on nothing
    const t = setTimeout(() => reject(new DeadlineError(`${what} did not finish within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e)),
    );
  });
}

export type { Direction };
