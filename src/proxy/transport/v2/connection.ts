import { randomBytes, randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import { COMMAND_SIZE, Frame, HEADER_SIZE, INVALID_COMMAND, checksum, internCommand, writeCommand, type CutThroughSink, type Network } from '../../../codec/index.js';
import type { FrameReader, FrameWriter, Transport } from '../types.js';
import {
  ELLSWIFT_LEN,
  GARBAGE_TERMINATOR_LEN,
  HEADER_LEN,
  IGNORE_BIT,
  LENGTH_FIELD_LEN,
  MAX_GARBAGE_LEN,
  PacketCipher,
  TAG_LEN,
  deriveKeys,
  newEphemeralKey,
  sharedSecret,
  type EphemeralKey,
  type OpenPacket,
} from './cipher.js';
import { commandOfShortId, shortIdOf } from './message-ids.js';

export type V2Role = 'initiator' | 'responder';

/** Why a v2 connection failed; each closes the peer (bhp_v2_failures_total{reason}). */
export type V2FailReason = 'garbage_too_long' | 'wrong_network' | 'packet_too_large' | 'decrypt_failed' | 'bad_key' | 'handshake_timeout';

export interface V2Events {
  /** The peer's version packet arrived: application packets follow. */
  ready(sessionId: Buffer): void;
  failed(reason: V2FailReason, detail: string): void;
  /** A message that has no v1 form (unknown short id, no message type): dropped, as Core drops it. */
  dropped(detail: string): void;
}

export interface V2Options {
  role: V2Role;
  network: Network;
  socket: Socket;
  /** largest v1 payload; a packet whose contents exceed it + 13 (type and command) closes the peer */
  maxMessageSize: number;
  events: V2Events;
  /** our ephemeral key; a fresh one by default */
  key?: EphemeralKey;
  /** the garbage we send after our key; by default random bytes of random length up to 4095, as Core sends */
  garbage?: Buffer;
  /** our key and garbage already went out (an initiator that waited for the first answer before its session) */
  opened?: boolean;
}

const enum Recv {
  KEY,
  GARBAGE,
  VERSION,
  APP,
  FAILED,
}

const EMPTY: Buffer = Buffer.alloc(0);
/** bytes 4..16 of a v1 `version` header: a responder seeing them in a key is talking to another network */
const V1_VERSION_FIELD = Buffer.from('version\0\0\0\0\0', 'latin1');
/** the long form: type byte 0, then the 12-byte command */
const LONG_HEAD = 1 + COMMAND_SIZE;

/**
 * One BIP324 v2 connection at the proxy: the handshake (our ElligatorSwift key and garbage,
 * theirs, the garbage terminators, the version packets) and then packets in both directions.
 * As a Transport, its reader turns the peer's packets into v1 frames for the pipeline (built
 * with the checksum bitcoind needs) and its writer turns frames into packets (short ids from
 * BIP324's table, long form for every other command and x: ones). v2 is never cut through:
 * a packet is authenticated only once whole, and a frame is encrypted whole.
 *
 * Memory: what is held is at most one packet (the contents limit, like the v1 decoder's frame
 * limit), the garbage (4111 bytes) and, before the handshake ends, the frames our node sent.
 */
export class V2Connection implements Transport, FrameReader {
  readonly name = 'v2';
  readonly role: V2Role;
  readonly #o: V2Options;
  readonly #key: EphemeralKey;
  readonly #garbage: Buffer;
  readonly #maxContents: number;
  #state = Recv.KEY;
  #sink: CutThroughSink | null = null;
  readonly #writer: V2Writer;
  /** bytes received, not yet consumed (copies: see push) */
  #chunks: Buffer[] = [];
  #have = 0;
  /** the peer's garbage and terminator, while looking for the terminator */
  #garb: Buffer = EMPTY;
  #recvTerminator: Buffer = EMPTY;
  #recv: PacketCipher | null = null;
  #send: PacketCipher | null = null;
  /** AAD of the next packet received: the peer's garbage for the first one */
  #recvAad: Buffer = EMPTY;
  /** the packet being received: its contents length, decryption, plaintext so far, bytes to go */
  #pktLen = -1;
  #open: OpenPacket | null = null;
  #plain: Buffer[] = [];
  #plainBytes = 0;
  #toGo = 0;
  /** frames our node sent before the handshake let us encrypt */
  #queued: Buffer[] | null = [];
  #ready = false;
  #sessionId: Buffer | null = null;

  constructor(options: V2Options) {
    this.#o = options;
    this.role = options.role;
    this.#key = options.key ?? newEphemeralKey();
    this.#garbage = options.garbage ?? randomBytes(randomInt(MAX_GARBAGE_LEN + 1));
    this.#maxContents = LONG_HEAD + options.maxMessageSize;
    this.#writer = new V2Writer(this, options.socket);
  }

  /** the handshake finished both ways (their version packet arrived) */
  get ready(): boolean {
    return this.#ready;
  }

  get sessionId(): Buffer | null {
    return this.#sessionId;
  }

  /** Send our key and garbage (the responder once it saw a v2 opening, the initiator at once). */
  start(): void {
    if (this.#o.opened) return;
    this.#o.socket.write(Buffer.concat([this.#key.ellswift, this.#garbage]));
  }

  // Transport

  reader(sink: CutThroughSink): FrameReader {
    this.#sink = sink;
    return this;
  }

  writer(_socket: Socket): FrameWriter {
    return this.#writer;
  }

  // FrameReader

  get bufferedBytes(): number {
    return this.#have + this.#garb.length + this.#plainBytes;
  }

  push(chunk: Buffer): void {
    if (this.#state === Recv.FAILED || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#have += chunk.length;
    while (this.#step());
    // `chunk` may be a view of a read buffer the socket's next read overwrites (LendingReadBuffer):
    // keep a copy of what is left, a few bytes (part of a key, a length field or a tag)
    if (this.#have > 0) this.#chunks = [Buffer.concat(this.#chunks, this.#have)];
  }

  /** One step of the receive state machine; false when it needs more bytes. */
  #step(): boolean {
    switch (this.#state) {
      case Recv.KEY:
        return this.#receiveKey();
      case Recv.GARBAGE:
        return this.#receiveGarbage();
      case Recv.FAILED:
        return false;
      default:
        return this.#receivePacket();
    }
  }

  #receiveKey(): boolean {
    // Core (V2Transport::ProcessReceivedKeyBytes): a responder whose "key" carries a v1 version
    // command after a foreign magic is talking to a node of another network
    if (this.role === 'responder' && this.#have >= 16 && this.#peek(16).subarray(4).equals(V1_VERSION_FIELD)) {
      return this.#fail('wrong_network', 'the opening is a v1 version message of another network');
    }
    if (this.#have < ELLSWIFT_LEN) return false;
    const theirs = this.#take(ELLSWIFT_LEN);
    let secret: Uint8Array;
    try {
      secret = sharedSecret(this.#key, theirs, this.role === 'initiator');
    } catch (err) {
      return this.#fail('bad_key', `ECDH failed: ${(err as Error).message}`);
    }
    const k = deriveKeys(secret, this.#o.network.magic);
    const initiating = this.role === 'initiator';
    this.#send = initiating ? new PacketCipher(k.initiatorL, k.initiatorP) : new PacketCipher(k.responderL, k.responderP);
    this.#recv = initiating ? new PacketCipher(k.responderL, k.responderP) : new PacketCipher(k.initiatorL, k.initiatorP);
    this.#recvTerminator = initiating ? k.responderTerminator : k.initiatorTerminator;
    this.#sessionId = k.sessionId;
    this.#state = Recv.GARBAGE;
    this.#writer.keysReady(initiating ? k.initiatorTerminator : k.responderTerminator, this.#send, this.#garbage);
    return true;
  }

  /** The peer's garbage ends at the first occurrence of its terminator, within 4095 + 16 bytes. */
  #receiveGarbage(): boolean {
    if (this.#have === 0) return false;
    const room = MAX_GARBAGE_LEN + GARBAGE_TERMINATOR_LEN - this.#garb.length;
    const from = Math.max(0, this.#garb.length - GARBAGE_TERMINATOR_LEN + 1);
    this.#garb = Buffer.concat([this.#garb, this.#take(Math.min(room, this.#have))]);
    const at = this.#garb.indexOf(this.#recvTerminator, from);
    if (at < 0) {
      if (this.#garb.length >= MAX_GARBAGE_LEN + GARBAGE_TERMINATOR_LEN) {
        return this.#fail('garbage_too_long', `no garbage terminator within ${MAX_GARBAGE_LEN} bytes of garbage`);
      }
      return false;
    }
    const rest = this.#garb.subarray(at + GARBAGE_TERMINATOR_LEN);
    this.#recvAad = this.#garb.subarray(0, at);
    this.#garb = EMPTY;
    if (rest.length > 0) {
      this.#chunks.unshift(rest);
      this.#have += rest.length;
    }
    this.#state = Recv.VERSION;
    return true;
  }

  #receivePacket(): boolean {
    const recv = this.#recv!;
    if (this.#pktLen < 0) {
      if (this.#have < LENGTH_FIELD_LEN) return false;
      const len = recv.decryptLength(this.#take(LENGTH_FIELD_LEN));
      if (len > this.#maxContents) return this.#fail('packet_too_large', `packet contents of ${len} bytes, above the maximum of ${this.#maxContents}`);
      this.#pktLen = len;
      this.#toGo = HEADER_LEN + len;
      this.#open = recv.open(this.#toGo, this.#recvAad);
      this.#recvAad = EMPTY;
    }
    // decrypt as the bytes arrive: nothing is gathered, the plaintext is released only once authenticated
    while (this.#toGo > 0 && this.#have > 0) {
      const piece = this.#takeUpTo(this.#toGo);
      const plain = this.#open!.update(piece);
      this.#plain.push(plain);
      this.#plainBytes += plain.length;
      this.#toGo -= piece.length;
    }
    if (this.#toGo > 0 || this.#have < TAG_LEN) return false;
    if (!this.#open!.finish(this.#take(TAG_LEN))) return this.#fail('decrypt_failed', 'packet authentication failed');
    const plain = this.#plain;
    const len = this.#pktLen;
    this.#plain = [];
    this.#plainBytes = 0;
    this.#open = null;
    this.#pktLen = -1;
    this.#packet(plain, len);
    return true;
  }

  /** An authenticated packet: header byte + `len` bytes of contents, in pieces. */
  #packet(plain: Buffer[], len: number): void {
    if ((plain[0]![0]! & IGNORE_BIT) !== 0) return; // a decoy
    if (this.#state === Recv.VERSION) {
      // the version packet: its contents are reserved for later versions and ignored (BIP324)
      this.#state = Recv.APP;
      this.#ready = true;
      this.#o.events.ready(this.#sessionId!);
      return;
    }
    if (len === 0) return this.#o.events.dropped('a packet with no message type');
    const head = gather(plain, Math.min(HEADER_LEN + LONG_HEAD, HEADER_LEN + len));
    const id = head[1]!;
    let command: string;
    let offset: number;
    if (id === 0) {
      if (len < LONG_HEAD) return this.#o.events.dropped('a long-form message shorter than its command');
      command = '';
      offset = HEADER_LEN + LONG_HEAD;
    } else {
      const c = commandOfShortId(id);
      if (c === null) return this.#o.events.dropped(`unknown short message id ${id}`);
      command = c;
      offset = HEADER_LEN + 1;
    }
    const payloadLen = HEADER_LEN + len - offset;
    const raw = Buffer.allocUnsafe(HEADER_SIZE + payloadLen);
    this.#o.network.magic.copy(raw, 0);
    if (id === 0) {
      head.copy(raw, 4, HEADER_LEN + 1, HEADER_LEN + LONG_HEAD);
      // as v1: a field bitcoind rejects goes on for bitcoind to drop
      command = internCommand(raw, 4) ?? INVALID_COMMAND;
    } else writeCommand(command, raw, 4);
    raw.writeUInt32LE(payloadLen, 16);
    copyFrom(plain, offset, raw, HEADER_SIZE);
    checksum(raw.subarray(HEADER_SIZE)).copy(raw, 20);
    this.#sink?.onFrame(new Frame(raw, command, true));
  }

  #fail(reason: V2FailReason, detail: string): false {
    this.#state = Recv.FAILED;
    this.#chunks = [];
    this.#have = 0;
    this.#plain = [];
    this.#o.events.failed(reason, detail);
    return false;
  }

  /** The receive buffer's first `n` bytes (n <= have), consumed. */
  #take(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      this.#have -= n;
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = this.#peek(n);
    let left = n;
    while (left > 0) left -= this.#takeUpTo(left).length;
    return out;
  }

  /** Up to `n` bytes from the front of the first chunk, consumed. */
  #takeUpTo(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length <= n) {
      this.#chunks.shift();
      this.#have -= first.length;
      return first;
    }
    this.#chunks[0] = first.subarray(n);
    this.#have -= n;
    return first.subarray(0, n);
  }

  #peek(n: number): Buffer {
    return gather(this.#chunks, n);
  }

  // sending (the writer's half)

  /** A v1 frame toward the peer: one packet, or queued until the handshake lets us encrypt. */
  sendFrame(raw: Buffer): void {
    if (this.#queued) {
      this.#queued.push(Buffer.from(raw)); // raw may be a view into a reused read buffer
      return;
    }
    writePacket(this.#o.socket, this.encryptFrame(raw));
  }

  /** The packet for a v1 frame, not written (the cipher moves on: it must then be sent in order). */
  encryptFrame(raw: Buffer): Buffer[] {
    if (!this.#send || this.#queued) throw new Error('the v2 handshake has not reached the packet phase');
    return this.#send.encrypt(contentsOf(raw), EMPTY);
  }

  /** Called by the writer once the terminator and our version packet went out. */
  sendQueued(): void {
    const q = this.#queued ?? [];
    this.#queued = null;
    for (const raw of q) this.sendFrame(raw);
  }
}

/** Frames to a v2 peer, one packet each (exported for the pipeline's property test). */
export class V2Writer implements FrameWriter {
  readonly cutThrough = false;
  /** injected frames waiting for frameEnd() (see holdInjected); null: none held */
  #held: Buffer[] | null = null;

  constructor(
    private readonly conn: V2Connection,
    private readonly socket: Socket,
  ) {}

  /** Both keys known: our garbage terminator, our version packet (AAD: our garbage), then what waited. */
  keysReady(terminator: Buffer, send: PacketCipher, garbage: Buffer): void {
    this.socket.cork();
    this.socket.write(terminator);
    writePacket(this.socket, send.encrypt([], garbage));
    this.conn.sendQueued();
    this.socket.uncork();
  }

  frame(raw: Buffer): void {
    this.conn.sendFrame(raw);
  }

  /** Never called for a whole-frame writer, but for a fatal v1 header from our node: it has no v2 form. */
  bytes(): void {}

  frameEnd(): void {
    const held = this.#held;
    if (held === null) return;
    this.#held = null;
    for (const raw of held) this.conn.sendFrame(raw);
  }

  holdInjected(): void {
    this.#held ??= [];
  }

  inject(raw: Buffer): void {
    if (this.#held !== null) this.#held.push(raw);
    else this.conn.sendFrame(raw);
  }

  flush(): void {}

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }
}

/** A sink for a reader that only hands whole frames (a v2 reader): no cut-through, errors ignored. */
export function wholeFrames(onFrame: (frame: Frame) => void): CutThroughSink {
  return {
    onFrame,
    onError: () => {},
    wantsCut: () => false,
    mayCutEarly: () => false,
    onCutStart: () => {},
    onBytes: () => {},
    onCutEnd: () => {},
  };
}

/** A v1 frame's v2 contents: short id or long form, then the payload (no copy of the payload). */
export function contentsOf(raw: Buffer): Buffer[] {
  const command = internCommand(raw, 4);
  const id = command === null ? 0 : shortIdOf(command);
  const payload = raw.subarray(HEADER_SIZE);
  if (id !== 0) return [Buffer.of(id), payload];
  const head = Buffer.allocUnsafe(LONG_HEAD);
  head[0] = 0;
  raw.copy(head, 1, 4, 4 + COMMAND_SIZE);
  return [head, payload];
}

function writePacket(socket: Socket, pieces: Buffer[]): void {
  if (socket.destroyed || socket.writableEnded) return;
  for (const p of pieces) socket.write(p);
}

/** The first `n` bytes of `pieces` as one buffer (no copy when the first piece holds them). */
function gather(pieces: readonly Buffer[], n: number): Buffer {
  const first = pieces[0]!;
  if (first.length >= n) return first.subarray(0, n);
  const out = Buffer.allocUnsafe(n);
  let at = 0;
  for (const p of pieces) {
    const k = Math.min(p.length, n - at);
    p.copy(out, at, 0, k);
    at += k;
    if (at === n) break;
  }
  return out;
}

/** Copy `pieces` from byte `skip` on into `dst` at `at`. */
function copyFrom(pieces: readonly Buffer[], skip: number, dst: Buffer, at: number): void {
  for (const p of pieces) {
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    at += p.copy(dst, at, skip);
    skip = 0;
  }
}
