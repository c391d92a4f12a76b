import type { Socket } from 'node:net';
import { HEADER_SIZE, INVALID_COMMAND, commandFieldStartsWith, type CutThroughSink, type Frame, type FrameError, type Network } from '../codec/index.js';
import type { ChainTarget, HookChain } from '../hooks/chain.js';
import { HookFault, isThenable } from '../hooks/result.js';
import { Lane, type LaneDriver } from './lanes.js';
import type { Direction } from './observer.js';
import type { FrameReader, FrameWriter, Transport } from './transport/types.js';

/** What one direction's pipeline needs from its session. */
export interface PipelineHost extends ChainTarget {
  /** the chain for new frames (swapped on reload) */
  readonly chain: HookChain;
  /** one frame of `direction` (command INVALID_COMMAND when its field is invalid) */
  countFrame(direction: Direction, command: string, bytes: number): void;
  frameError(direction: Direction, err: FrameError): void;
  /** the peer used up its hook time: its frames wait (in order) until budgetRefilled() */
  overBudget(): boolean;
  budgetRefilled(): Promise<unknown>;
}

/** The proxy's own business with the frames of one direction, ahead of the hooks. */
export interface FrameStage {
  /** commands the stage must see whole */
  intercepts(command: string): boolean;
  /** could a command whose field starts with `field[offset..offset+n)` be one it intercepts? */
  mayIntercept(field: Buffer, offset: number, n: number): boolean;
  /** a whole frame: the frame for the hooks (maybe rewritten), or null when consumed here; a promise holds the lane */
  enter(frame: Frame): Frame | null | Promise<unknown>;
  /** `frame` went out */
  forwarded(frame: Frame): void;
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
  /** the source is read into a reused buffer: frames handed to hooks must be copied */
  copyForHooks: boolean;
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
  readonly #copyForHooks: boolean;
  /** a fatal header that arrived while a hook held the lane: it goes on after the queued frames */
  #fatal: { header: Buffer; err: FrameError } | null = null;
  #fatalHeader: Buffer | null = null;

  constructor(
    options: PipelineOptions,
    private readonly host: PipelineHost,
    private readonly stage: FrameStage,
  ) {
    this.direction = options.direction;
    this.out = options.out;
    this.#magic = options.network.magic;
    this.#copyForHooks = options.copyForHooks;
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
    this.out.flush();
  }

  /** A frame from outside the stream toward this direction's destination. */
  inject(raw: Buffer): void {
    this.out.inject(raw);
  }

  // CutThroughSink: the decoder asks and hands on

  wantsCut(command: string, _payloadLength: number): boolean {
    if (!this.out.cutThrough || this.lane.busy || this.host.overBudget()) return false;
    return command === INVALID_COMMAND || (!this.stage.intercepts(command) && this.host.chain.hooksFor(this.direction, command).length === 0);
  }

  mayCutEarly(header: Buffer, n: number): boolean {
    if (!this.out.cutThrough || this.lane.busy || this.host.overBudget()) return false;
    for (let i = 0; i < 4 && i < n; i++) if (header[i] !== this.#magic[i]) return true; // bitcoind closes on it: no hook sees it
    if (n <= 4) return false;
    return !this.stage.mayIntercept(header, 4, n - 4) && !anyHookMayWant(this.host.chain, this.direction, header, 4, n - 4);
  }

  onCutStart(command: string, payloadLength: number): void {
    this.host.countFrame(this.direction, command, HEADER_SIZE + payloadLength);
  }

  onBytes(buf: Buffer, start: number, end: number): void {
    // while the lane is held nothing is cut through: these are a fatal header's bytes (see onError)
    if (this.lane.busy) this.#fatalHeader = Buffer.from(buf.subarray(start, end));
    else this.out.bytes(buf, start, end);
  }

  onCutEnd(): void {
    this.out.frameEnd();
  }

  onFrame(frame: Frame): void {
    if (this.host.closed) return;
    if (this.lane.busy) this.lane.enqueue(frame);
    else this.next(frame);
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
    this.host.countFrame(this.direction, frame.command, frame.raw.length);
    if (frame.command === INVALID_COMMAND) return this.out.frame(frame.raw); // for bitcoind to drop; no hook reads it
    const entered = this.stage.enter(frame);
    if (entered === null) return;
    if (isThenable(entered)) return this.#hold(entered, () => {});
    const chain = this.host.chain;
    if (chain.hooksFor(this.direction, entered.command).length === 0) return this.#forward(entered);
    const out = chain.run(this.direction, this.#copyForHooks ? entered.copy() : entered, this.host, Date.now());
    if (isThenable(out)) this.#hold(out, (f) => f && this.#forward(f));
    else if (out) this.#forward(out);
  }

  drained(): void {
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

  readonly failed = (err: unknown): void => this.host.fault(new HookFault('(chain)', 'throw', `the hook chain failed: ${String(err)}`));

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
    this.out.frame(frame.raw);
    this.stage.forwarded(frame);
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
