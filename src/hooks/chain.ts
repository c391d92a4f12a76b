import { performance } from 'node:perf_hooks';
import { FrameError, codecFor, decodePayload, encodeFrame, encodePayload, frameLengthAt, type Frame, type Network } from '../codec/index.js';
import { ACCEPTED, checkAcceptResult, type AcceptDecision } from './accept-result.js';
import { X_FEATURE_ID, type AcceptReturn, type Direction, type HookConnection, type HookContext, type HookModule, type HookPeer, type HookResult, type HookReturn, type MaybePromise, type OutgoingMessage } from './api.js';
import { CLOCK_MS } from './clock.js';
import { FrameMessage } from './message.js';
import { HookFault, checkResult, isThenable } from './result.js';

/**
 * Plain counters of one hook, bumped by the chain on every call (no lookup, no label hashing);
 * the metrics module publishes them when Prometheus scrapes.
 */
export interface HookCallCounters {
  calls: number;
  /** calls that returned nothing (or an empty result): the message went on unchanged */
  passes: number;
}

/** Per-hook runtime metrics; implemented by the metrics module. */
export interface HookRuntimeObserver {
  /** a timed hook call (message calls are timed by sample, see Pipeline; counters have them all) */
  invocation(hook: string, seconds: number): void;
  /** the counters of `hook` (the same object for the same name, across reloads) */
  counters?(hook: string): HookCallCounters;
  error(hook: string, kind: HookFault['kind']): void;
  action(hook: string, action: string): void;
  xCommand(outcome: 'handled' | 'unknown' | 'refused'): void;
}

export const nullHookObserver: HookRuntimeObserver = { invocation() {}, error() {}, action() {}, xCommand() {} };

/** One module of the chain, loaded and initialised. */
export interface LoadedHook {
  /** unique within the chain: the module's name, with #2, #3 for repeated modules */
  readonly name: string;
  readonly module: HookModule<unknown>;
  readonly ctx: HookContext;
  /** the `module:` entry as written in the config */
  readonly source: string;
  readonly wants: Record<Direction, ReadonlySet<string> | '*' | null>;
}

/** What the chain needs from the session it runs for (implemented by PeerSession). */
export interface ChainTarget {
  readonly hookPeer: HookPeer;
  readonly closed: boolean;
  /** side effects of a result, in this order: log, push, misbehave, ban, disconnect */
  hookLog(hook: LoadedHook, entry: NonNullable<HookResult['log']>): void;
  push(hook: LoadedHook, message: OutgoingMessage): void;
  misbehave(hook: LoadedHook, points: number, reason: string): void;
  ban(hook: LoadedHook, reason: string, duration: string | number | undefined): void;
  disconnect(hook: LoadedHook, reason: string): void;
  /** the hook broke its contract: disconnect the peer as incompatible */
  fault(fault: HookFault): void;
  /** ms hook calls held the event loop for this peer (the synchronous part), for its hook budget; `now`: performance.now() */
  hookTime?(ms: number, now: number): void;
}

export interface ChainSettings {
  network: Network;
  maxMessageSize: number;
  /** time budget per hook call, ms */
  timeoutMs: number;
}

const NONE: readonly LoadedHook[] = Object.freeze([]);
const NO_RUNNERS: readonly Runner[] = Object.freeze([]);
const CACHE_MAX = 512;

/** A message hook with its counters, as the chain runs it. */
interface Runner {
  readonly h: LoadedHook;
  readonly c: HookCallCounters;
  /**
   * h.module and its onMessage, h.ctx: read from the runner (one shape for all) instead of from
   * each module object (a shape each: a lookup that misses the inline cache on every call)
   */
  readonly module: HookModule<unknown>;
  readonly onMessage: NonNullable<HookModule<unknown>['onMessage']>;
  readonly ctx: HookContext;
}

/** Untimed: run() reads no clock (see Pipeline's sampling). */
export const UNTIMED = -1;

/** runAt(): every hook passed the range on, unchanged, synchronously */
export const PASSED: unique symbol = Symbol('passed');

/** #invoke(): the hook threw (the peer is faulted) */
const FAULTED: unique symbol = Symbol('faulted');

/** The modules of the `hooks:` list, in order, with per-command lookups for the fast path. */
export class HookChain {
  readonly #byCommand: Record<Direction, Map<string, readonly LoadedHook[]>> = { inbound: new Map(), outbound: new Map() };
  readonly #runnersByCommand: Record<Direction, Map<string, readonly Runner[]>> = { inbound: new Map(), outbound: new Map() };
  readonly #messageHooks: Record<Direction, readonly LoadedHook[]>;
  readonly #runners: Record<Direction, readonly Runner[]>;
  /** the command and runner list of the last #runnersFor, per direction */
  readonly #lastIn: { command: string; runners: readonly Runner[] } = { command: '', runners: NO_RUNNERS };
  readonly #lastOut: { command: string; runners: readonly Runner[] } = { command: '', runners: NO_RUNNERS };
  /** the message object lent to the next synchronous run (see FrameMessage) */
  #spare: FrameMessage | null = null;
  /** performance.now() after the last hook of the last timed synchronous run() */
  lastClock = 0;
  /** ms of hook time the last timed synchronous run() charged (clock reads taken off) */
  lastCharged = 0;
  /** a hook of the last synchronous run() read the frame's bytes (FrameMessage.bytesSeen): they may be kept */
  lastBytesSeen = false;
  /** of the last passRange(): frames run, where the last began, and what came of it */
  lastFrames = 0;
  lastFrameStart = 0;
  lastOut: MaybePromise<Frame | null> | typeof PASSED = PASSED;
  readonly #counters = new Map<LoadedHook, HookCallCounters>();
  readonly #x = new Map<string, { hook: LoadedHook; handler: NonNullable<HookModule<unknown>['commands']>[string] }>();
  readonly featureProviders: readonly LoadedHook[];
  readonly connectHooks: readonly LoadedHook[];
  readonly acceptHooks: readonly LoadedHook[];

  constructor(
    readonly hooks: readonly LoadedHook[],
    readonly settings: ChainSettings,
    readonly observer: HookRuntimeObserver = nullHookObserver,
  ) {
    const withMessage = hooks.filter((h) => typeof h.module.onMessage === 'function');
    // Outbound runs the list in reverse (as Envoy runs write filters): the first hook is the one
    // nearest the peer both ways, so a hook wraps everything listed after it symmetrically.
    this.#messageHooks = {
      inbound: withMessage.filter((h) => h.wants.inbound !== null),
      outbound: withMessage.filter((h) => h.wants.outbound !== null).reverse(),
    };
    const runner = (h: LoadedHook): Runner => ({ h, c: this.#countersOf(h), module: h.module, onMessage: h.module.onMessage!, ctx: h.ctx });
    this.#runners = { inbound: this.#messageHooks.inbound.map(runner), outbound: this.#messageHooks.outbound.map(runner) };
    for (const h of hooks) for (const [cmd, handler] of Object.entries(h.module.commands ?? {})) this.#x.set(cmd, { hook: h, handler });
    this.featureProviders = hooks.filter((h) => typeof h.module.features === 'function');
    this.connectHooks = hooks.filter((h) => typeof h.module.onConnect === 'function');
    this.acceptHooks = hooks.filter((h) => typeof h.module.onAccept === 'function');
  }

  #countersOf(h: LoadedHook): HookCallCounters {
    let c = this.#counters.get(h);
    if (!c) this.#counters.set(h, (c = this.observer.counters?.(h.name) ?? { calls: 0, passes: 0 }));
    return c;
  }

  static empty(settings: ChainSettings): HookChain {
    return new HookChain([], settings);
  }

  /** Hooks with onMessage for `direction`, in the order they run. */
  messageHooks(direction: Direction): readonly LoadedHook[] {
    return this.#messageHooks[direction];
  }

  /** Hooks that want `command` in `direction`; empty means the frame takes the fast path. */
  hooksFor(direction: Direction, command: string): readonly LoadedHook[] {
    const all = this.#messageHooks[direction];
    if (all.length === 0) return NONE;
    const cache = this.#byCommand[direction];
    let list = cache.get(command);
    if (list === undefined) {
      list = all.filter((h) => wantsCommand(h, direction, command));
      if (list.length === 0) list = NONE;
      if (cache.size < CACHE_MAX) cache.set(command, list);
    }
    return list;
  }

  xCommand(command: string) {
    return this.#x.get(command);
  }

  xCommands(): string[] {
    return [...this.#x.keys()];
  }

  #runnersFor(direction: Direction, command: string): readonly Runner[] {
    // a stream of one command asks for the same list frame after frame: no lookup then
    const last = direction === 'inbound' ? this.#lastIn : this.#lastOut;
    if (last.command === command) return last.runners;
    const all = this.#runners[direction];
    if (all.length === 0) return NO_RUNNERS;
    const list = this.#runnersLookup(direction, command, all);
    last.command = command;
    last.runners = list;
    return list;
  }

  #runnersLookup(direction: Direction, command: string, all: readonly Runner[]): readonly Runner[] {
    const cache = this.#runnersByCommand[direction];
    let list = cache.get(command);
    if (list === undefined) {
      list = all.filter((r) => wantsCommand(r.h, direction, command));
      if (cache.size < CACHE_MAX) cache.set(command, list);
    }
    return list;
  }

  /**
   * Run the hooks of `direction` over a frame, in order. Returns the frame to forward (the
   * original, or a replacement), or null when it was dropped or the peer is gone. Returns a
   * promise only when a hook did: synchronous hooks cost no promise and no microtask, and a
   * hook that returns nothing costs one call and two additions.
   *
   * `clock` is performance.now() at the start: each call is then timed (histogram, time budget,
   * timeout) and lastClock is the time after the last one. UNTIMED reads no clock at all; the
   * caller then accounts for the time of a stretch of frames (see Pipeline).
   */
  run(direction: Direction, frame: Frame, target: ChainTarget, receivedAt: number, clock: number = performance.now()): MaybePromise<Frame | null> {
    const out = this.runAt(direction, frame, frame.source, frame.command, frame.start, frame.end, target, receivedAt, clock);
    return out === PASSED ? frame : out;
  }

  /**
   * run() over `frame`, or (frame null) over the range `source[start..end)` of a socket read
   * with no Frame made for it: PASSED then means every hook passed it synchronously, unchanged
   * (a Frame is built only when a hook returns something or awaits).
   */
  runAt(direction: Direction, frame: Frame | null, source: Buffer, command: string, start: number, end: number, target: ChainTarget, receivedAt: number, clock: number): MaybePromise<Frame | null> | typeof PASSED {
    const msg = this.#message(frame, source, command, start, end, direction, receivedAt);
    const out = this.#runFrom(this.#runnersFor(direction, command), 0, direction, frame, msg, target, clock);
    this.#done(msg, out);
    return out;
  }

  /** The message object for the next run: the spare one, pointed at this frame, or a new one. */
  #message(frame: Frame | null, source: Buffer, command: string, start: number, end: number, direction: Direction, receivedAt: number): FrameMessage {
    const spare = this.#spare;
    this.#spare = null; // a hook that runs another chain synchronously gets a fresh object
    return spare ? spare.reset(frame, source, command, start, end, direction, receivedAt) : new FrameMessage(frame, source, command, start, end, direction, receivedAt);
  }

  /** A run ended with `out`: its message is the spare again unless an awaiting hook keeps it; what its hooks read. */
  #done(msg: FrameMessage, out: unknown): void {
    if (!isThenable(out)) this.#spare = msg;
    this.lastBytesSeen = msg.bytesSeen;
  }

  /**
   * The untimed fast path (see Pipeline's sampling): the hooks over the whole frames of one
   * command in `source[start..stop)`, each as a range of the read (no Frame made), at most `max`
   * of them, while every hook passes each synchronously. Returns the end of the last frame it
   * ran (lastFrames of them, the last from lastFrameStart on). lastOut is PASSED when every
   * frame it ran was passed unchanged; otherwise it is what came of the last one, as run()
   * returns it. lastBytesSeen: a hook read the bytes of one of them.
   */
  passRange(direction: Direction, source: Buffer, command: string, start: number, stop: number, max: number, target: ChainTarget, receivedAt: number): number {
    const runners = this.#runnersFor(direction, command);
    const msg = this.#message(null, source, command, start, start, direction, receivedAt);
    const peer = target.hookPeer;
    let out: MaybePromise<Frame | null> | typeof PASSED = PASSED;
    let p = start;
    let at = start;
    let n = 0;
    frames: while (p < stop && n < max) {
      const end = p + frameLengthAt(source, p);
      msg.moveTo(p, end);
      at = p;
      n++;
      p = end;
      for (let i = 0; i < runners.length; i++) {
        const r = this.#callUntimed(runners[i]!, msg, peer, target);
        if (r === undefined) continue;
        out = r === null ? null : this.#resume(runners, i, r, direction, msg, target);
        break frames;
      }
    }
    this.lastFrames = n;
    this.lastFrameStart = at;
    this.lastOut = out;
    this.#done(msg, out);
    return p;
  }

  /**
   * One untimed call of a message hook: undefined when it passed the message on and the peer is
   * still there; null after a fault or when the peer is gone; else what it returned.
   */
  #callUntimed(runner: Runner, msg: FrameMessage, peer: HookPeer, target: ChainTarget): MaybePromise<HookReturn> | null | undefined {
    const r = this.#invoke(runner, msg, peer, target);
    if (r === FAULTED) return null;
    if (r === undefined || r === null) {
      runner.c.passes++;
      return target.closed ? null : undefined; // the hook (or its budget) closed the peer
    }
    return r;
  }

  /** Call a message hook (counted); FAULTED when it threw, and the peer is faulted for it. */
  #invoke(runner: Runner, msg: FrameMessage, peer: HookPeer, target: ChainTarget): MaybePromise<HookReturn> | typeof FAULTED {
    runner.c.calls++;
    try {
      return runner.onMessage.call(runner.module, msg, peer, runner.ctx);
    } catch (err) {
      this.#fault(target, new HookFault(runner.h.name, 'throw', `threw: ${(err as Error)?.message ?? String(err)}`));
      return FAULTED;
    }
  }

  /** Hook i of `runners` returned `r` (not a pass) for `msg`, run untimed: apply it, then the rest of the chain. */
  #resume(runners: readonly Runner[], i: number, r: MaybePromise<HookReturn>, direction: Direction, msg: FrameMessage, target: ChainTarget): MaybePromise<Frame | null> {
    const frame = msg.frame;
    if (isThenable(r)) return this.#settle(runners, i, direction, frame, msg, target, r as Promise<HookReturn>, performance.now());
    if (target.closed) return null;
    return this.#continueAfter(runners, i, direction, frame, this.#apply(runners[i]!.h, r as HookReturn, target, frame, direction), msg, target, UNTIMED);
  }

  /** Hook i of `runners` made `out` of `frame` (itself, a replacement, or null: dropped): the rest of the chain over it. */
  #continueAfter(runners: readonly Runner[], i: number, direction: Direction, frame: Frame, out: Frame | null, msg: FrameMessage, target: ChainTarget, clock: number): MaybePromise<Frame | null> {
    if (out === null) return null;
    const rest =
      out === frame
        ? this.#runFrom(runners, i + 1, direction, frame, msg, target, clock)
        : this.#runFrom(this.#after(direction, runners[i]!.h, out.command), 0, direction, out, FrameMessage.of(out, direction, msg.receivedAt), target, clock);
    return rest as MaybePromise<Frame | null>; // a Frame was given: never PASSED
  }

  /** Deliver an x: frame to the module that registered its command (never forwarded). */
  runX(frame: Frame, target: ChainTarget, receivedAt: number): MaybePromise<boolean> {
    const x = this.#x.get(frame.command);
    if (!x) {
      this.observer.xCommand('unknown');
      return false;
    }
    this.observer.xCommand('handled');
    const msg = FrameMessage.of(frame, 'inbound', receivedAt);
    const out = this.#call(x.hook, () => x.handler(msg, target.hookPeer, x.hook.ctx), target, frame, 'inbound');
    if (isThenable(out)) return (out as Promise<Frame | null | undefined>).then(() => true);
    return true;
  }

  /** Call every onConnect hook; results apply like message results. */
  connect(target: ChainTarget, frame: Frame | null = null): void {
    for (const h of this.connectHooks) {
      const out = this.#call(h, () => h.module.onConnect!(target.hookPeer, h.ctx), target, frame, 'inbound');
      if (isThenable(out)) (out as Promise<unknown>).catch(() => {});
      if (target.closed) return;
    }
  }

  /**
   * The BIP 434 feature frames the hooks announce to this peer, each features() call under the
   * same rules as a message callback: a throw, a malformed answer or a call over the time budget
   * is a fault (the peer is disconnected) and yields nothing.
   */
  features(target: ChainTarget): Frame[] {
    const frames: Frame[] = [];
    for (const h of this.featureProviders) {
      this.#countersOf(h).calls++;
      const t0 = performance.now();
      try {
        const list: unknown = h.module.features!(target.hookPeer, h.ctx);
        const ms = performance.now() - t0;
        this.observer.invocation(h.name, ms / 1000);
        if (ms > this.settings.timeoutMs) throw new HookFault(h.name, 'timeout', `features() blocked for ${Math.round(ms)} ms, over its budget of ${this.settings.timeoutMs} ms`);
        if (!Array.isArray(list)) throw new HookFault(h.name, 'malformed', 'features() must return an array of { id, data? }');
        for (const f of list as { id?: unknown; data?: unknown }[]) {
          if (typeof f?.id !== 'string' || (f.data !== undefined && !(f.data instanceof Uint8Array))) {
            throw new HookFault(h.name, 'malformed', 'features() must return an array of { id: string, data?: Uint8Array }');
          }
          try {
            frames.push(encodeFrame(this.settings.network, 'feature', encodePayload('feature', { featureId: f.id, data: Buffer.from(f.data ?? []) })));
          } catch (err) {
            throw new HookFault(h.name, 'invalid_message', `features(): ${(err as Error).message}`);
          }
        }
      } catch (err) {
        this.#fault(target, err instanceof HookFault ? err : new HookFault(h.name, 'throw', `features() threw: ${(err as Error)?.message ?? String(err)}`));
        return [];
      }
    }
    return frames;
  }

  /**
   * Call every onAccept hook in order, before the backend connection is opened. The first
   * refusal, ban or fault decides; log lines go to the hook's logger. A promise only when a
   * hook returned one.
   */
  accept(conn: HookConnection, from = 0): MaybePromise<AcceptDecision> {
    const hooks = this.acceptHooks;
    for (let i = from; i < hooks.length; i++) {
      const h = hooks[i]!;
      this.#countersOf(h).calls++;
      const t0 = performance.now();
      let r: MaybePromise<AcceptReturn>;
      try {
        r = h.module.onAccept!(conn, h.ctx);
      } catch (err) {
        return this.#acceptFault(new HookFault(h.name, 'throw', `onAccept threw: ${(err as Error)?.message ?? String(err)}`));
      }
      if (isThenable(r)) {
        return withTimeout(r as Promise<AcceptReturn>, this.settings.timeoutMs).then(
          (value) => {
            this.observer.invocation(h.name, (performance.now() - t0) / 1000);
            const d = this.#acceptDecision(h, value);
            return d === ACCEPTED ? this.accept(conn, i + 1) : d;
          },
          (err: unknown) => this.#acceptFault(settleFault(h, err, this.settings.timeoutMs, 'onAccept ')),
        );
      }
      const ms = performance.now() - t0;
      this.observer.invocation(h.name, ms / 1000);
      if (ms > this.settings.timeoutMs) return this.#acceptFault(new HookFault(h.name, 'timeout', `onAccept blocked for ${Math.round(ms)} ms, over its budget of ${this.settings.timeoutMs} ms`));
      const d = this.#acceptDecision(h, r);
      if (d !== ACCEPTED) return d;
    }
    return ACCEPTED;
  }

  #acceptDecision(h: LoadedHook, raw: AcceptReturn): AcceptDecision {
    let r;
    try {
      r = checkAcceptResult(h.name, raw);
    } catch (err) {
      return this.#acceptFault(err as HookFault);
    }
    if (!r) return ACCEPTED;
    if (r.log !== undefined) {
      this.observer.action(h.name, 'log');
      const { level = 'info', msg, ...fields } = typeof r.log === 'string' ? { msg: r.log } : r.log;
      h.ctx.log[level](msg, fields);
    }
    if (r.ban !== undefined) {
      this.observer.action(h.name, 'ban');
      return r.ban === true ? { kind: 'ban', hook: h.name, reason: `hook ${h.name}`, duration: undefined } : { kind: 'ban', hook: h.name, reason: r.ban.reason, duration: r.ban.duration };
    }
    if (r.refuse !== undefined) {
      this.observer.action(h.name, 'refuse');
      return { kind: 'refuse', hook: h.name, reason: r.refuse };
    }
    return ACCEPTED;
  }

  #acceptFault(fault: HookFault): AcceptDecision {
    this.observer.error(fault.hook, fault.kind);
    return { kind: 'fault', fault };
  }

  disconnect(peer: HookPeer, reason: string): void {
    for (const h of this.hooks) {
      if (typeof h.module.onDisconnect !== 'function') continue;
      const threw = (err: unknown) => {
        this.observer.error(h.name, 'throw');
        h.ctx.log.error('onDisconnect threw', { err: (err as Error)?.message ?? String(err), peer: peer.id });
      };
      try {
        // an `async onDisconnect` fits the void signature: its rejection is a throw, not a crash of the process
        const r: unknown = h.module.onDisconnect(peer, reason, h.ctx);
        if (isThenable(r)) (r as Promise<unknown>).catch(threw);
      } catch (err) {
        threw(err);
      }
    }
  }

  /**
   * Close every module, each within the hook timeout: a close() that never settles must not hold
   * a reload or the shutdown forever. Resolves to what went wrong, by hook (logged and counted too).
   */
  async close(): Promise<{ hook: LoadedHook; problem: string }[]> {
    const problems: { hook: LoadedHook; problem: string }[] = [];
    for (const h of this.hooks) {
      if (typeof h.module.close !== 'function') continue;
      try {
        await withTimeout(Promise.resolve(h.module.close()), this.settings.timeoutMs);
      } catch (err) {
        const fault = settleFault(h, err, this.settings.timeoutMs, 'close() ');
        this.observer.error(h.name, fault.kind);
        h.ctx.log.error(fault.message);
        problems.push({ hook: h, problem: fault.message });
      }
    }
    return problems;
  }

  /** `frame` null: the message stands for a range (see runAt); its Frame is made when needed. */
  #runFrom(runners: readonly Runner[], start: number, direction: Direction, frame: Frame | null, msg: FrameMessage, target: ChainTarget, clock: number): MaybePromise<Frame | null> | typeof PASSED {
    const peer = target.hookPeer;
    let charges = 0;
    for (let i = start; i < runners.length; i++) {
      const runner = runners[i]!;
      const { h, c } = runner;
      const startedAt = clock;
      const r = this.#invoke(runner, msg, peer, target);
      if (r === FAULTED) return null;
      const async = isThenable(r);
      if (clock !== UNTIMED) {
        clock = performance.now();
        const ms = clock - startedAt;
        const charged = ms > CLOCK_MS ? ms - CLOCK_MS : 0;
        charges += charged;
        target.hookTime?.(charged, clock);
        if (!async) {
          this.observer.invocation(h.name, ms / 1000);
          if (ms > this.settings.timeoutMs) return this.#fault(target, new HookFault(h.name, 'timeout', `blocked for ${Math.round(ms)} ms, over its budget of ${this.settings.timeoutMs} ms`));
        }
        // the next hook's time starts here: the bookkeeping above (histogram, budget) is the proxy's
        if (i + 1 < runners.length) clock = performance.now();
      }
      if (!async && target.closed) return null; // over its hook budget with action disconnect, or the hook closed it
      if (r === undefined || r === null) {
        c.passes++;
        continue;
      }
      const current = (frame ??= msg.frame);
      if (async) return this.#settle(runners, i, direction, current, msg, target, r as Promise<HookReturn>, clock === UNTIMED ? performance.now() : startedAt);
      const out = this.#apply(h, r as HookReturn, target, current, direction);
      if (out === null) return null;
      if (out !== current) {
        frame = out;
        msg = FrameMessage.of(out, direction, msg.receivedAt);
        runners = this.#after(direction, h, out.command);
        i = -1;
      }
    }
    if (clock !== UNTIMED) {
      this.lastClock = clock;
      this.lastCharged = charges;
    }
    return frame ?? PASSED;
  }

  /** A hook returned a promise: apply what it settles to, then run the rest of the chain. */
  #settle(runners: readonly Runner[], i: number, direction: Direction, frame: Frame, msg: FrameMessage, target: ChainTarget, pending: Promise<HookReturn>, t0: number): Promise<Frame | null> {
    const h = runners[i]!.h;
    return withTimeout(pending, this.settings.timeoutMs).then(
      (value) => {
        this.observer.invocation(h.name, (performance.now() - t0) / 1000);
        if (target.closed) return null;
        if (value === undefined || value === null) runners[i]!.c.passes++;
        const out = value === undefined || value === null ? frame : this.#apply(h, value, target, frame, direction);
        return this.#continueAfter(runners, i, direction, frame, out, msg, target, performance.now());
      },
      (err: unknown) => this.#asyncFault(target, h, err),
    );
  }

  /** A hook's promise rejected or did not settle in time. */
  #asyncFault(target: ChainTarget, h: LoadedHook, err: unknown): null {
    return this.#fault(target, settleFault(h, err, this.settings.timeoutMs));
  }

  /** The hooks after `h` that want `command` (a hook replaced the message). */
  #after(direction: Direction, h: LoadedHook, command: string): readonly Runner[] {
    const all = this.#runners[direction];
    return all.slice(all.findIndex((r) => r.h === h) + 1).filter((r) => wantsCommand(r.h, direction, command));
  }

  /**
   * Call one hook and apply its result. Returns the frame to continue with (possibly a
   * replacement), null when dropped or faulted, or a promise of either.
   */
  #call(h: LoadedHook, fn: () => MaybePromise<HookReturn>, target: ChainTarget, frame: Frame | null, direction: Direction): MaybePromise<Frame | null> {
    this.#countersOf(h).calls++;
    const t0 = performance.now();
    let r: MaybePromise<HookReturn>;
    try {
      r = fn();
    } catch (err) {
      return this.#fault(target, new HookFault(h.name, 'throw', `threw: ${(err as Error)?.message ?? String(err)}`));
    }
    const now = performance.now();
    const blockedMs = now - t0;
    target.hookTime?.(blockedMs > CLOCK_MS ? blockedMs - CLOCK_MS : 0, now); // as for messages: the clock read is not the hook's
    if (!isThenable(r)) {
      this.observer.invocation(h.name, blockedMs / 1000);
      if (blockedMs > this.settings.timeoutMs) {
        return this.#fault(target, new HookFault(h.name, 'timeout', `blocked for ${Math.round(blockedMs)} ms, over its budget of ${this.settings.timeoutMs} ms`));
      }
      if (target.closed) return null; // over its hook budget with action disconnect
      return this.#apply(h, r, target, frame, direction);
    }
    return withTimeout(r as Promise<HookReturn>, this.settings.timeoutMs).then(
      (value) => {
        this.observer.invocation(h.name, (performance.now() - t0) / 1000);
        if (target.closed) return null;
        return this.#apply(h, value, target, frame, direction);
      },
      (err: unknown) => this.#asyncFault(target, h, err),
    );
  }

  #apply(h: LoadedHook, raw: HookReturn, target: ChainTarget, frame: Frame | null, direction: Direction): Frame | null {
    let r: HookResult | null;
    let replacement: Frame | null = null;
    try {
      r = checkResult(h.name, raw);
      if (r?.replace && frame) replacement = this.#buildReplacement(h, r.replace, direction);
    } catch (err) {
      return this.#fault(target, err as HookFault);
    }
    if (!r) {
      this.observer.action(h.name, 'pass');
      return frame;
    }
    if (r.log !== undefined) {
      this.observer.action(h.name, 'log');
      target.hookLog(h, r.log);
    }
    if (r.push) {
      for (const m of r.push) {
        this.observer.action(h.name, 'push');
        try {
          target.push(h, m);
        } catch (err) {
          // framed when sent: a command or payload the codec refuses is the hook's, like a bad replacement
          if (!(err instanceof FrameError)) throw err;
          return this.#fault(target, new HookFault(h.name, 'invalid_message', `push: ${err.message}`));
        }
      }
    }
    if (r.misbehave !== undefined) {
      this.observer.action(h.name, 'misbehave');
      const m = r.misbehave;
      target.misbehave(h, typeof m === 'number' ? m : m.points, typeof m === 'number' ? `hook ${h.name}` : m.reason);
    }
    if (r.ban !== undefined && !target.closed) {
      this.observer.action(h.name, 'ban');
      target.ban(h, r.ban === true ? `hook ${h.name}` : r.ban.reason, r.ban === true ? undefined : r.ban.duration);
    }
    if (r.disconnect !== undefined && !target.closed) {
      this.observer.action(h.name, 'disconnect');
      target.disconnect(h, r.disconnect === true ? `hook ${h.name}` : r.disconnect);
    }
    if (target.closed) return null;
    if (r.action === 'drop') {
      this.observer.action(h.name, 'drop');
      return null;
    }
    if (replacement) {
      if (direction === 'outbound' && replacement.command.startsWith('x:') && !target.hookPeer.features.has(X_FEATURE_ID)) {
        // BIP 434: messages a feature introduces go only to peers that announced it
        this.observer.xCommand('refused');
        return this.#fault(target, new HookFault(h.name, 'invalid_message', `replace: "${replacement.command}" to a peer that did not announce ${X_FEATURE_ID}`));
      }
      this.observer.action(h.name, 'replace');
      return replacement;
    }
    if (!r.push && r.misbehave === undefined && r.log === undefined) this.observer.action(h.name, 'pass');
    return frame;
  }

  /** A replacement is validated by the codec as if it had just been received. */
  #buildReplacement(h: LoadedHook, m: OutgoingMessage, direction: Direction): Frame {
    if (direction === 'inbound' && m.command.startsWith('x:')) {
      throw new HookFault(h.name, 'invalid_message', `replace: x: commands never go to bitcoind ("${m.command}")`);
    }
    try {
      const frame = encodeFrame(this.settings.network, m.command, m.payload ?? Buffer.alloc(0), this.settings.maxMessageSize);
      if (codecFor(m.command)) decodePayload(m.command, frame.payload);
      return frame;
    } catch (err) {
      throw new HookFault(h.name, 'invalid_message', `replace: ${(err as Error).message}`);
    }
  }

  #fault(target: ChainTarget, fault: HookFault): null {
    this.observer.error(fault.hook, fault.kind);
    target.fault(fault);
    return null;
  }
}

export function wantsCommand(h: LoadedHook, direction: Direction, command: string): boolean {
  const w = h.wants[direction];
  return w === '*' || (w !== null && w.has(command));
}

const TIMEOUT = Symbol('timeout');

/** The fault of a hook promise that rejected, or (TIMEOUT) did not settle within `timeoutMs`. */
function settleFault(h: LoadedHook, err: unknown, timeoutMs: number, call = ''): HookFault {
  return err === TIMEOUT
    ? new HookFault(h.name, 'timeout', `${call}did not settle within its budget of ${timeoutMs} ms`)
    : new HookFault(h.name, 'throw', `${call}rejected: ${(err as Error)?.message ?? String(err)}`);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(TIMEOUT), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
