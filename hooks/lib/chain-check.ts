/**
 * Read-only questions to bitcoind's JSON-RPC about its active chain, for hooks that must not
 * answer for the node what the node would not (block-cache). One call is used: `getblockheader`,
 * whose `confirmations` is -1 for a block outside the active chain (invalidated, or reorganised
 * out) and 1 or more inside it. Answers are kept for a short time; while one is being fetched,
 * later questions for the same block wait for it instead of asking again. Every error (timeout,
 * refused connection, HTTP or RPC error) answers "not known to be in the active chain".
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { z } from 'zod';
import { durationSeconds, positiveDurationSeconds } from './common.js';

export const chainCheckOptions = z
  .strictObject({
    /** bitcoind's RPC endpoint, e.g. http://127.0.0.1:8332 */
    url: z.url({ protocol: /^http$/ }),
    user: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    /** bitcoind's .cookie file (re-read when bitcoind answers 401 after a restart) */
    cookieFile: z.string().min(1).optional(),
    /** how long an answer is kept */
    cacheTtl: durationSeconds.default(1),
    /** how long to wait for bitcoind; keep it well below limits.hookTimeout (0 would be node's "no timeout": a hung RPC would cost peers their connection) */
    timeout: positiveDurationSeconds.default(1),
  })
  .refine((o) => (o.cookieFile === undefined) !== (o.user === undefined && o.password === undefined) && (o.user === undefined) === (o.password === undefined), {
    message: 'give either user and password, or cookieFile',
  });
export type ChainCheckOptions = z.output<typeof chainCheckOptions>;

/** Answers kept at most (oldest dropped first). */
const MAX_ANSWERS = 20_000;

export type CheckOutcome = 'in_chain' | 'not_in_chain' | 'error';

interface Answer {
  until: number;
  inChain: Promise<boolean>;
}

export class ChainCheck {
  readonly #answers = new Map<string, Answer>();
  readonly #url: URL;
  /** idle keep-alive sockets are unref'd by node, so nothing here keeps the process alive */
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  #auth: string | null = null;

  constructor(
    readonly options: ChainCheckOptions,
    /** called once per block asked of bitcoind, with the outcome */
    private readonly counted: (outcome: CheckOutcome) => void = () => {},
  ) {
    this.#url = new URL(options.url);
  }

  /** For each block hash (hex, display order as RPC shows it): is it in bitcoind's active chain? */
  async inActiveChain(hashes: readonly string[]): Promise<boolean[]> {
    const now = Date.now();
    const ask: string[] = [];
    for (const h of hashes) {
      const a = this.#answers.get(h);
      if (!a || a.until <= now) ask.push(h);
    }
    if (ask.length > 0) {
      const batch = this.#ask(ask);
      ask.forEach((h, i) => {
        this.#answers.delete(h); // re-insert at the newest end
        this.#answers.set(h, { until: now + this.options.cacheTtl * 1000, inChain: batch.then((r) => r[i]!) });
      });
      while (this.#answers.size > MAX_ANSWERS) this.#answers.delete(this.#answers.keys().next().value!);
    }
    return Promise.all(hashes.map((h) => this.#answers.get(h)!.inChain));
  }

  /** One JSON-RPC batch of getblockheader calls; never rejects. */
  async #ask(hashes: string[]): Promise<boolean[]> {
    try {
      let replies = await this.#post(hashes);
      if (replies === 401 && this.options.cookieFile) {
        this.#auth = null; // bitcoind restarted with a new cookie
        replies = await this.#post(hashes);
      }
      if (!Array.isArray(replies)) throw new Error(`HTTP ${replies}`);
      const byId = new Map(replies.map((r) => [r.id, r]));
      return hashes.map((_, i) => {
        const r = byId.get(i);
        if (r && !r.error && typeof r.result?.confirmations === 'number') {
          const inChain = r.result.confirmations >= 1;
          this.counted(inChain ? 'in_chain' : 'not_in_chain');
          return inChain;
        }
        // -5: bitcoind does not know the block at all
        this.counted(r?.error?.code === -5 ? 'not_in_chain' : 'error');
        return false;
      });
    } catch {
      for (const _ of hashes) this.counted('error');
      return hashes.map(() => false);
    }
  }

  #authorization(): string {
    if (this.#auth === null) {
      const o = this.options;
      const secret = o.cookieFile ? readFileSync(o.cookieFile, 'utf8').trim() : `${o.user}:${o.password}`;
      this.#auth = `Basic ${Buffer.from(secret).toString('base64')}`;
    }
    return this.#auth;
  }

  #post(hashes: string[]): Promise<RpcReply[] | number> {
    const body = JSON.stringify(hashes.map((h, id) => ({ jsonrpc: '1.0', id, method: 'getblockheader', params: [h, true] })));
    return new Promise((resolve, reject) => {
      const req = http.request(
        this.#url,
        {
          method: 'POST',
          agent: this.#agent,
          timeout: this.options.timeout * 1000,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: this.#authorization() },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            // bitcoind answers a batch with 200 even when single calls fail
            if (res.statusCode !== 200) return resolve(res.statusCode ?? 0);
            try {
              resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as RpcReply[]);
            } catch (err) {
              reject(err as Error);
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });
  }
}

interface RpcReply {
  id: number;
  result?: { confirmations?: number } | null;
  error?: { code: number; message: string } | null;
}
