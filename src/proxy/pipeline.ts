import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { COMMAND_SIZE, Frame, HEADER_SIZE, INVALID_COMMAND, commandFieldStartsWith, frameLengthAt, type CutThroughSink, type FrameError, type Network } from '../codec/index.js';
import { PASSED, UNTIMED, type ChainTarget, type HookChain } from '../hooks/chain.js';
import { HookFault, isThenable } from '../hooks/result.js';
import { HookCostEstimate, SAMPLE_EVERY } from './hook-cost-estimate.js';
import { Lane, type LaneDriver } from './lanes.js';
import type { Direction } from './observer.js';
import type { FrameReader, FrameWriter, Transport } from './transport/types.js';

/** What one direction's pipeline needs from its session. */
export interface PipelineHost extends ChainTarget {
  /** the chain for new frames (swapped on reload) */
  readonly chain: HookChain;
  /** `frames` frames of one command in `direction` (INVALID_COMMAND when the field is invalid), `bytes` in all */
  countFrames(direction: Direction, command: string, frames: number, bytes: number): void;
  frameError(direction: Direction, err: FrameError): void;
  /** the peer used up its hook time: its frames wait (in order) until budgetRefilled() */
  overBudget(): boolean;
  budgetRefilled(): Promise<unknown>;
  /** the lane of `direction` lets its source read again: resume it unless the destination's buffer is full */
  resumeSource(direction: Direction): void;
}

/** The proxy's own business with the frames of one direction, ahead of the hooks. */
export interface FrameStage {
  /** commands the stage must see whole */
  intercepts(command: string): boolean;
  /** could a command whose field starts with `field[offset..offset+n)` be one it intercepts? */
  mayIntercept(field: Buffer, offset: number, n: number): boolean;
  /**
   * A whole frame of a command it intercepts (others go past it): the frame for the hooks (maybe
   * rewritten), or null when consumed here; a promise holds the lane. intercepts() must answer
   * the same for a command all along.
   */
  enter(frame: Frame): Frame | null | Promise<unknown>;
  /** `frame` went out */
  forwarded(frame: Frame): void;
}

/**
 * Hook calls are timed by sample: a clock read costs as much as a few pass-through hooks. While
 * the sampled frames show the chain is cheap (see HookCostEstimate), the frames between two
 * samples run untimed and are charged to the peer's hook budget at the estimated cost per
 * frame: the chain's time, not the proxy's own work around it (decoding, forwarding), which a
 * wall-clock stretch would charge too and so throttle a fast peer through a chain of cheap
 * hooks. The gap between samples is drawn at random (0 to 2 x SAMPLE_EVERY frames, mean
 * SAMPLE_EVERY), so a peer cannot line up costly frames to fall between samples. A stretch
 * whose wall time is over the hook timeout is still a fault, like a single call over it.
 */
/** xorshift32 for the sample gaps: statistical, not secret (a peer sees no sample either way) */
let gapState = (randomBytes(4).readUInt32LE(0) | 1) >>> 0;
function nextGap(): number {
  let x = gapState;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  gapState = x >>> 0;
  return gapState % (2 * SAMPLE_EVERY);
}

export interface PipelineOptions {
  direction: Direction;
  network: Network;
  transport: Transport;
  /** the socket this direction reads (paused when the lane is full) */
  src: Socket;
  out: FrameWriter;
  /** bytes that may queue behind an async hook */
  hookQueue: number;
  /** the reused buffer the source is read into (LendingReadBuffer); null: every read is a fresh buffer */
  reads: ReadBuffer | null;
}

/** The source socket's reused read buffer. */
export interface ReadBuffer {
  /** the stage or a hook may keep bytes of the last read: the next read gets a fresh buffer instead of overwriting them */
  lend(): void;
  /** see CutThroughSink.carry: hand the last `bytes` of `chunk` (the last read) again at the start of the next */
  carry(chunk: Buffer, bytes: number, frameSize: number): boolean;
}

/**
 * One direction of a session: socket bytes → frames → the proxy's stage → hooks → the other
 * socket. A frame that neither the stage nor any hook wants is cut through: its header goes
 * on as soon as it is parsed and its payload as it arrives, with no copy and no allocation.
 * Frames someone wants are stored whole, then forwarded (store-and-forward); while a hook of
 * this direction awaits, later frames wait whole in the lane, in order.
 */
export class Pipeline implements CutThroughSink, LaneDriver {
  readonly direction: Direction;
  reader: FrameReader;
  out: FrameWriter;
  readonly lane: Lane;
  readonly #magic: Buffer;
  readonly #reads: ReadBuffer | null;
  /** bytes of this read may be kept (by the stage, an awaiting hook, a hook that read them): lend the read buffer, if there is one */
  #lendRead = false;
  /** a fatal header that arrived while a hook held the lane: it goes on after the queued frames */
  #fatal: { header: Buffer; err: FrameError } | null = null;
  #fatalHeader: Buffer | null = null;
  /**
   * Frames are counted in runs of one command, reported to the host when the command changes,
   * before a whole frame goes to the stage and hooks, and at the end of every read: a frame
   * costs a comparison and two additions, not a lookup.
   */
  #runCommand = '';
  #runFrames = 0;
  #runBytes = 0;
  /** the last cut-through answer and what it depends on (the command and the chain) */
  #cutCommand = '';
  #cutChain: HookChain | null = null;
  #cutAnswer = false;
  /** the last command asked of the stage, and whether it intercepts it */
  #stagedCommand = '';
  #staged = false;
  /** the last command a hook of `#hookedChain` wanted: the next frame of it skips the lookup */
  #hookedCommand = '';
  #hookedChain: HookChain | null = null;
  /** performance.now() where the current untimed stretch of hooked frames began; -1: none open */
  #stretchAt = -1;
  #untimed = 0;
  /** untimed frames allowed before the next sample (see nextGap) */
  #gap = 0;
  /** the frames after the last timed one may run untimed */
  #cheap = false;
  readonly #cost = new HookCostEstimate();
  /** Date.now() for the frames of this read (hooks' msg.receivedAt); 0: not read yet */
  #receivedAt = 0;

  constructor(
    options: PipelineOptions,
    private readonly host: PipelineHost,
    private readonly stage: FrameStage,
  ) {
    this.direction = options.direction;
    this.out = options.out;
    this.#magic = options.network.magic;
    this.#reads = options.reads;
    this.lane = new Lane(options.src, options.hookQueue);
    this.reader = options.transport.reader(this);
  }

  /** The peer's first bytes chose another transport (v2): read it from now on. */
  readWith(transport: Transport): void {
    this.reader = transport.reader(this);
  }

  /** ... or write it from now on. */
  writeWith(out: FrameWriter): void {
    this.out = out;
  }

  /** Bytes read from the source socket. */
  push(chunk: Buffer): void {
    this.reader.push(chunk);
    if (this.#lendRead) {
      // once a read, not once a frame: the next read's buffer is chosen after this returns
      this.#lendRead = false;
      this.#reads?.lend();
    }
    this.#endOfBatch();
    this.out.flush();
  }

  /** A frame from outside the stream toward this direction's destination. */
  inject(raw: Buffer): void {
    this.out.inject(raw);
  }

  // CutThroughSink: the decoder asks and hands on

  wantsCut(command: string, _payloadLength: number): boolean {
    if (!this.out.cutThrough || this.lane.busy || this.host.overBudget()) return false;
    const chain = this.host.chain;
    if (command === this.#cutCommand && chain === this.#cutChain) return this.#cutAnswer;
    this.#cutCommand = command;
    this.#cutChain = chain;
    return (this.#cutAnswer = command === INVALID_COMMAND || (!this.stage.intercepts(command) && chain.hooksFor(this.direction, command).length === 0));
  }

  mayCutEarly(header: Buffer, n: number): boolean {
    if (!this.out.cutThrough || this.lane.busy || this.host.overBudget()) return false;
    for (let i = 0; i < 4 && i < n; i++) if (header[i] !== this.#magic[i]) return true; // bitcoind closes on it: no hook sees it
    if (n <= 4) return false;
    // only the command field: past it come the length and checksum, which no command name matches
    const field = n - 4 < COMMAND_SIZE ? n - 4 : COMMAND_SIZE;
    return !this.stage.mayIntercept(header, 4, field) && !anyHookMayWant(this.host.chain, this.direction, header, 4, field);
  }

  onCutStart(command: string, payloadLength: number): void {
    this.#count(command, HEADER_SIZE + payloadLength);
  }

  onCutRun(command: string, frames: number, bytes: number): void {
    // onCutStart of the same command came just before: the current run of counts
    this.#runOf(command);
    this.#runFrames += frames;
    this.#runBytes += bytes;
  }

  onBytes(buf: Buffer, start: number, end: number): void {
    // while the lane is held nothing is cut through: these are a fatal header's bytes (see onError)
    if (this.lane.busy) this.#fatalHeader = Buffer.from(buf.subarray(start, end));
    else this.out.bytes(buf, start, end);
  }

  onCutEnd(): void {
    this.out.frameEnd();
  }

  carry(chunk: Buffer, bytes: number, frameSize: number): boolean {
    return this.#reads !== null && this.#reads.carry(chunk, bytes, frameSize);
  }

  onFrame(frame: Frame): void {
    if (this.host.closed) return;
    if (this.lane.busy) this.lane.enqueue(frame);
    else this.next(frame);
  }

  /**
   * Whole frames of one command inside the read (`chunk[start..stop)`), not cut through because
   * a hook or the stage wants them. The common case, hooks that want them and pass them on at
   * once, costs no Frame and no copy: the hooks see each as a range of the read, and the frames
   * they passed go on as one range. Returns where it stopped: after a frame that now holds the
   * lane (an awaiting hook) or that the budget stops, so the frames after it queue as usual.
   */
  onFrames(chunk: Buffer, command: string, start: number, stop: number): number {
    if (this.host.closed) return stop;
    if (this.lane.busy || this.host.overBudget() || this.#stageIntercepts(command)) {
      // one at a time, as Frames: the lane keeps them, the stage reads them, or the budget holds them
      const end = start + frameLengthAt(chunk, start);
      this.onFrame(new Frame(chunk, command, undefined, start, end));
      return end;
    }
    this.#runOf(command);
    const chain = this.host.chain;
    if (!this.#hooksWant(chain, command)) {
      this.#countRun(chunk, start, stop);
      this.#forwardRange(chunk, start, stop);
      return stop;
    }
    // the frames the hooks passed since `from` go on together; what hooks send meanwhile waits for them
    let from = start;
    let p = start;
    while (p < stop) {
      this.out.holdInjected();
      let at = p; // the frame the hooks did something with, if they did
      let out: ReturnType<HookChain['runAt']> | undefined;
      if (this.#cheap && this.#stretchAt >= 0 && this.#untimed < this.#gap) {
        // inside an untimed stretch: the chain runs frame after frame until one is not passed
        const end = chain.passRange(this.direction, chunk, command, p, stop, this.#gap - this.#untimed, this.host, this.#receivedAt);
        this.#untimed += chain.lastFrames;
        this.#runFrames += chain.lastFrames;
        this.#runBytes += end - p;
        at = chain.lastFrameStart;
        out = chain.lastOut;
        p = end;
      } else {
        const end = p + frameLengthAt(chunk, p);
        this.#runFrames++;
        this.#runBytes += end - p;
        out = this.#runHooks(chain, null, chunk, command, p, end);
        p = end;
      }
      if (chain.lastBytesSeen) this.#lendRead = true;
      if (out !== PASSED) {
        // what went before it goes first, then what its hooks sent (held till then), then it
        if (at > from) this.#forwardRange(chunk, from, at);
        else this.out.frameEnd();
        this.#afterHooks(chain, out);
        from = p;
      }
      if (this.host.closed || this.lane.busy || this.host.overBudget()) break;
    }
    if (p > from) this.#forwardRange(chunk, from, p);
    else this.out.frameEnd(); // nothing left to forward: what was held goes now
    return this.host.closed ? stop : p;
  }

  /** Does a hook of the chain want `command`? Remembered for the last command that one did. */
  #hooksWant(chain: HookChain, command: string): boolean {
    if (command === this.#hookedCommand && chain === this.#hookedChain) return true;
    if (chain.hooksFor(this.direction, command).length === 0) return false;
    this.#hookedCommand = command;
    this.#hookedChain = chain;
    return true;
  }

  /** Count the frames of `chunk[start..stop)` (whole frames of the current run's command). */
  #countRun(chunk: Buffer, start: number, stop: number): void {
    for (let p = start; p < stop; p += frameLengthAt(chunk, p)) this.#runFrames++;
    this.#runBytes += stop - start;
  }

  onError(err: FrameError): void {
    if (this.#fatalHeader) {
      // bitcoind would read the frames before it first: report once they went on (drained)
      this.#fatal = { header: this.#fatalHeader, err };
      this.#fatalHeader = null;
      return;
    }
    this.out.flush(); // a fatal header went to onBytes: out before the session closes
    this.host.frameError(this.direction, err);
  }

  // LaneDriver

  next(frame: Frame): void {
    if (this.host.overBudget()) {
      // throttled: this frame goes first in the lane and nothing is read until the budget refills
      this.lane.holdFirst(frame);
      return this.#hold(this.host.budgetRefilled(), () => {});
    }
    const command = frame.command;
    this.#count(command, frame.byteLength);
    if (command === INVALID_COMMAND) return this.out.frame(frame.raw); // for bitcoind to drop; no hook reads it
    // Forwarding alone keeps no byte of the read past it (a write the socket could not finish
    // is lent by the session). The stage, an awaiting hook, or a hook that read the bytes may.
    let entered: Frame | null | Promise<unknown> = frame;
    if (this.#stageIntercepts(command)) {
      this.#lendRead = true;
      entered = this.stage.enter(frame);
      if (entered === null) return;
      if (isThenable(entered)) return this.#hold(entered, () => {});
    }
    const chain = this.host.chain;
    if (!this.#hooksWant(chain, entered.command)) return this.#forward(entered);
    const out = this.#runHooks(chain, entered, entered.source, entered.command, entered.start, entered.end);
    this.#afterHooks(chain, out === PASSED ? entered : out);
  }

  /** What the hooks made of a frame: forward it, drop it (null), or hold the lane for a promise. */
  #afterHooks(chain: HookChain, out: ReturnType<HookChain['run']> | undefined): void {
    if (out === undefined) return;
    if (isThenable(out)) {
      this.#lendRead = true;
      this.#hold(out, (f) => f && this.#forward(f));
      return;
    }
    if (chain.lastBytesSeen) this.#lendRead = true;
    if (out) this.#forward(out);
  }

  drained(): void {
    this.#endOfBatch();
    if (this.#fatal && !this.lane.busy) {
      const { header, err } = this.#fatal;
      this.#fatal = null;
      this.out.bytes(header, 0, header.length);
      this.onError(err);
    }
    this.out.flush();
    this.out.uncork();
  }

  stopped(): boolean {
    return this.host.closed;
  }

  resumeSource(): void {
    this.host.resumeSource(this.direction);
  }

  // a method, not an arrow field: that would be a closure per direction of every idle session
  failed(err: unknown): void {
    this.host.fault(new HookFault('(chain)', 'throw', `the hook chain failed: ${String(err)}`));
  }

  /**
   * The chain over one frame (`frame`, or with null the range `source[start..end)`: see
   * HookChain.runAt), timed or in an untimed stretch (see SAMPLE_EVERY); undefined when the
   * session closed first.
   */
  #runHooks(chain: HookChain, frame: Frame | null, source: Buffer, command: string, start: number, end: number): ReturnType<HookChain['runAt']> | undefined {
    if (this.#receivedAt === 0) this.#receivedAt = Date.now();
    if (this.#cheap && this.#stretchAt >= 0 && this.#untimed < this.#gap) {
      this.#untimed++;
      return chain.runAt(this.direction, frame, source, command, start, end, this.host, this.#receivedAt, UNTIMED);
    }
    const t0 = this.#endStretch(chain);
    if (this.host.closed) return undefined;
    const out = chain.runAt(this.direction, frame, source, command, start, end, this.host, this.#receivedAt, t0);
    if (isThenable(out)) return out;
    this.#cheap = this.#cost.sample(chain.lastCharged, chain.lastClock - t0);
    this.#stretchAt = chain.lastClock;
    this.#gap = nextGap();
    return out;
  }

  /** Does the stage intercept `command`? Remembered for the last command (a stage's answer never changes). */
  #stageIntercepts(command: string): boolean {
    if (command === this.#stagedCommand) return this.#staged;
    this.#stagedCommand = command;
    return (this.#staged = this.stage.intercepts(command));
  }

  /** Read the clock; charge an open untimed stretch to the peer's hook budget at the sampled cost (a fault when its wall time is over the timeout). */
  #endStretch(chain: HookChain): number {
    const now = performance.now();
    if (this.#stretchAt >= 0 && this.#untimed > 0) {
      const frames = this.#untimed;
      this.host.hookTime?.(frames * this.#cost.perFrame, now);
      const ms = now - this.#stretchAt;
      const limit = chain.settings.timeoutMs;
      if (ms > limit && !this.host.closed) {
        this.host.fault(new HookFault('(chain)', 'timeout', `hooks held the event loop for ${Math.round(ms)} ms over ${frames} messages, over the budget of ${limit} ms a call`));
      }
    }
    this.#stretchAt = -1;
    this.#untimed = 0;
    return now;
  }

  /** The end of a read (or of what a lane released): report counts, close the hooks' stretch. */
  #endOfBatch(): void {
    this.#reportCount();
    if (this.#untimed > 0) this.#endStretch(this.host.chain);
    this.#stretchAt = -1;
    this.#receivedAt = 0;
  }

  #count(command: string, bytes: number): void {
    this.#runOf(command);
    this.#runFrames++;
    this.#runBytes += bytes;
  }

  /** Counts from here on are of `command`: the run before it is reported. */
  #runOf(command: string): void {
    if (command === this.#runCommand) return;
    this.#reportCount();
    this.#runCommand = command;
  }

  #reportCount(): void {
    if (this.#runFrames === 0) return;
    this.host.countFrames(this.direction, this.#runCommand, this.#runFrames, this.#runBytes);
    this.#runFrames = 0;
    this.#runBytes = 0;
  }

  #hold<T>(pending: Promise<T>, settled: (value: T) => void): void {
    this.out.flush();
    // what the lane releases leaves in one write (drained() uncorks), as it would have come in
    this.lane.hold(
      pending,
      (value) => {
        this.out.cork();
        settled(value);
      },
      this,
    );
  }

  #forward(frame: Frame): void {
    this.#forwardRange(frame.source, frame.start, frame.end);
    this.stage.forwarded(frame);
  }

  /** Whole frames `source[start..end)` out, as they came. */
  #forwardRange(source: Buffer, start: number, end: number): void {
    if (this.out.cutThrough) {
      // through the piecewise path: a range of the chunk, no view made for it
      this.out.bytes(source, start, end);
      this.out.frameEnd();
      return;
    }
    // a writer that frames each message itself (v2) takes them one by one
    for (let p = start; p < end; ) {
      const next = p + frameLengthAt(source, p);
      this.out.frame(p === 0 && next === source.length ? source : source.subarray(p, next));
      p = next;
    }
    this.out.frameEnd(); // what hooks sent while these frames ran (held by holdInjected) goes after them
  }
}

/** Could a hook of `direction` want a command whose field starts with these bytes? */
function anyHookMayWant(chain: HookChain, direction: Direction, buf: Buffer, offset: number, n: number): boolean {
  for (const h of chain.messageHooks(direction)) {
    const wants = h.wants[direction];
    if (wants === '*') return true;
    if (wants) for (const c of wants) if (commandFieldStartsWith(c, buf, offset, n)) return true;
  }
  return false;
}
