/**
 * Requests to a seller and their answers, matched by nonce (docs/x-protocol.md §4.3.1: every
 * request starts with a u64 nonce, its answer or x:refuse echoes it, answers may come out of
 * order). The same matching serves the client library's own connection and the proxy's
 * outbound sessions; only `send` differs.
 */
import { randomBytes } from 'node:crypto';
import { BuyerError } from './errors.js';

export interface XAnswer {
  command: string;
  payload: Buffer;
}

interface Pending {
  resolve: (a: XAnswer) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class XRequests {
  readonly #pending = new Map<bigint, Pending>();
  #failed: BuyerError | null = null;

  constructor(
    /** send an x: message to the seller; false when it cannot go out */
    private readonly send: (command: string, payload: Buffer) => boolean,
    private readonly timeoutMs = 30_000,
  ) {}

  /** Send `command` with the payload built around a fresh nonce; resolve with the answer carrying it. */
  request(command: string, build: (nonce: bigint) => Buffer): Promise<XAnswer> {
    if (this.#failed) return Promise.reject(this.#failed);
    let nonce = 0n;
    while (nonce === 0n || this.#pending.has(nonce)) nonce = randomBytes(8).readBigUInt64LE(0); // 0 is the unsolicited x:balance's
    return new Promise<XAnswer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(nonce);
        reject(new BuyerError('timeout', `no answer to ${command} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      timer.unref();
      this.#pending.set(nonce, { resolve, reject, timer });
      if (!this.send(command, build(nonce))) {
        clearTimeout(timer);
        this.#pending.delete(nonce);
        reject(new BuyerError('closed', `could not send ${command}: the connection is closed or the seller did not announce the x: feature`));
      }
    });
  }

  /** An x: message from the seller. True when it answered a request of ours. */
  deliver(command: string, payload: Buffer): boolean {
    if (payload.length < 8) return false;
    const nonce = payload.readBigUInt64LE(0);
    const p = this.#pending.get(nonce);
    if (!p) return false;
    this.#pending.delete(nonce);
    clearTimeout(p.timer);
    p.resolve({ command, payload: Buffer.from(payload) });
    return true;
  }

  /** The connection is gone: every waiting request and every later one fails with `err`. */
  fail(err: BuyerError): void {
    this.#failed ??= err;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
  }

  get waiting(): number {
    return this.#pending.size;
  }
}
