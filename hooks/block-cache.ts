/**
 * block-cache: keeps the block and transaction payloads bitcoind sent to any peer (in an
 * lru-cache bounded in bytes) and answers peers' getdata from it, forwarding only the misses.
 * Documented in docs/hooks/block-cache.md, which also lists the correctness rules this file
 * keeps. In short:
 *   - only what bitcoind itself sent is served (learned from outbound `block` / `tx`), and only
 *     answers to a getdata this hook saw and understood (so the serialization is known);
 *   - MSG_WITNESS_* gets the witness serialization; MSG_BLOCK / MSG_TX the stripped one, built
 *     from the witness form by dropping marker, flag and witnesses (the bytes bitcoind's
 *     SERIALIZE_TRANSACTION_NO_WITNESS writes); a no-witness answer to a non-witness request is
 *     kept as the stripped form only;
 *   - a transaction goes only to a peer bitcoind announced it to (outbound inv, per peer,
 *     bounded), within `txTtl`; MSG_WTX is looked up by wtxid;
 *   - filtered and compact blocks, unknown types and types with flag bits other than the witness
 *     flag (e.g. Litecoin's MWEB 0x20000000) are always forwarded;
 *   - nothing is served before the peer's handshake is complete;
 *   - only blocks in bitcoind's active chain: a cached block is dropped when bitcoind's own
 *     headers (or an announced cmpctblock) show another block on the same parent, and with
 *     `rpc` every block is checked with getblockheader (answers kept `rpc.cacheTtl`) before it
 *     is served; unsure means forwarded;
 *   - bitcoind's answer order: the leading cached items of a getdata are pushed, everything from
 *     the first item that is not served on goes to bitcoind in one getdata.
 */
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import { codec, defineHook, HOOK_API_VERSION, type HookContext, type HookCounter, type HookGauge, type HookMessage, type HookPeer, type HookResult, type OutgoingMessage } from '../src/hooks/index.js';
import { ChainCheck, chainCheckOptions, type CheckOutcome } from './lib/chain-check.js';
import { byteSize, durationSeconds } from './lib/common.js';

const { InvType } = codec;

/** bitcoind's INVENTORY_MAX_RECENT_RELAY: how many announcements it remembers per peer. */
const DEFAULT_ANNOUNCED_PER_PEER = 3500;
/** about 10 MB of hashes per peer at most */
const MAX_ANNOUNCED_PER_PEER = 100_000;
/** bitcoind's RELAY_TX_CACHE_TIME: how long it keeps relayed transactions after announcing them (s). */
const DEFAULT_TX_TTL = 15 * 60;
/** getdata items awaiting bitcoind's answer, remembered per peer (oldest dropped first). */
const PENDING_PER_PEER = 5000;
/** bitcoind's getblocks limit: the block that makes it send the continuation inv is among the last. */
const GETBLOCKS_LIMIT = 500;
/**
 * Payload bytes one getdata is answered with from the cache, at most (the first item always is).
 * bitcoind serves a getdata item by item while its send buffer has room; the cache pushes its
 * answers at once, each a fresh copy, so a getdata naming one large block 50,000 times would
 * be multiplied into memory. The rest goes to bitcoind, which sends at the pace the peer reads.
 */
const MAX_SERVED_PER_GETDATA = 16 * 1024 * 1024;
/** Per-entry bookkeeping counted on top of the payload bytes. */
const ENTRY_OVERHEAD = 160;

export const blockCacheOptions = z.strictObject({
  /** bytes of blocks kept (0: no block caching) */
  maxBytes: byteSize.default(256 * 1024 * 1024),
  /** bytes of transactions kept (0: no transaction caching) */
  txMaxBytes: byteSize.default(32 * 1024 * 1024),
  /** a transaction is served for this long after bitcoind first served it, and only to peers it announced it to within this time */
  txTtl: durationSeconds.default(DEFAULT_TX_TTL),
  /** blocks expire this long after bitcoind first served them (0: never; size alone bounds them) */
  blockTtl: durationSeconds.default(0),
  /** transaction announcements remembered per peer */
  // held per connected peer: a bound typed a few digits too long would let every peer grow its set without end
  announcedPerPeer: z.number().int().positive().max(MAX_ANNOUNCED_PER_PEER).default(DEFAULT_ANNOUNCED_PER_PEER),
  /** optional read-only RPC to bitcoind: serve a block only if getblockheader says it is in the active chain */
  rpc: chainCheckOptions.optional(),
});

export type BlockCacheOptions = z.output<typeof blockCacheOptions>;

type Kind = 'block' | 'tx';

/** What bitcoind sent, with what we know about its serialization. */
interface Entry {
  /** the witness serialization when `witness`, else the stripped one */
  bytes: Buffer;
  /** `bytes` is the witness serialization (so both forms are known) */
  witness: boolean;
  /** `bytes` carries witness data (so the stripped form differs from it) */
  hasWitness: boolean;
  /** transactions: wtxid hex (wire order), when known */
  wtxid?: string;
  /** blocks: the parent's hash hex (wire order) */
  prev?: string;
}

/** Per peer, in peer.state (shared with other instances of this module; bounded). */
interface PeerBook {
  /** tx hashes (txid or wtxid, hex) bitcoind announced to this peer → when */
  announced: Map<string, number>;
  /** hashes forwarded to bitcoind in a getdata → the inventory type asked for (-1: asked with two types) */
  pending: Map<string, number>;
  /** blocks that must reach bitcoind's own getdata handling (possible getblocks continuation) */
  forward: Map<string, true>;
  /** the peer asked for a filtered block: bitcoind then sends stripped `tx` messages unasked */
  filtered: boolean;
  /** hashStop of the peer's getheaders with an empty locator: bitcoind answers with that header even for a stale block */
  stopHeaders: Map<string, true>;
  /** MSG_CMPCT_BLOCK items forwarded and not answered yet (bitcoind answers recent ones, stale or not, with a cmpctblock) */
  cmpctAsked: number;
}

const STATE_KEY = 'block-cache';
const CONFLICT = -1;

interface Metrics {
  hits: HookCounter;
  misses: HookCounter;
  bytesServed: HookCounter;
  evictions: HookCounter;
  entries: HookGauge;
  bytes: HookGauge;
  checks: HookCounter;
}

function hex(hash: Buffer): string {
  return hash.toString('hex');
}

/** A hash as RPC shows it (byte-reversed). */
function displayHex(hash: Buffer): string {
  return Buffer.from(hash).reverse().toString('hex');
}

function limitedSet<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key); // re-inserting moves it to the newest end
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value as K);
}

/** The stripped (non-witness) serialization of a block given in its witness form. */
export function strippedBlock(bytes: Buffer): Buffer {
  const block = codec.RawBlock.parse(bytes);
  // header and transaction count are the same in both forms
  const lead = bytes[80]!;
  const head = bytes.subarray(0, 80 + (lead < 0xfd ? 1 : lead === 0xfd ? 3 : lead === 0xfe ? 5 : 9));
  return Buffer.concat([head, ...block.txs.map((tx) => tx.stripped())]);
}

/** The cache of one loaded instance of the hook. */
export class BlockCache {
  readonly blocks: LRUCache<string, Entry> | null;
  readonly txs: LRUCache<string, Entry> | null;
  /** wtxid hex → txid hex, for the transactions whose witness form is cached */
  readonly #byWtxid = new Map<string, string>();
  /** parent hash hex → the cached blocks on it (to drop those bitcoind's chain left) */
  readonly #byPrev = new Map<string, Set<string>>();
  readonly #txTtlMs: number;
  readonly chainCheck: ChainCheck | null;

  constructor(
    readonly options: BlockCacheOptions,
    private readonly m: Metrics,
  ) {
    this.#txTtlMs = options.txTtl * 1000;
    this.chainCheck = options.rpc ? new ChainCheck(options.rpc, (outcome: CheckOutcome) => m.checks.inc({ outcome })) : null;
    this.blocks = options.maxBytes > 0 ? this.#lru('block', options.maxBytes, options.blockTtl * 1000) : null;
    this.txs = options.txMaxBytes > 0 ? this.#lru('tx', options.txMaxBytes, this.#txTtlMs) : null;
  }

  #lru(kind: Kind, maxSize: number, ttl: number): LRUCache<string, Entry> {
    return new LRUCache<string, Entry>({
      maxSize,
      sizeCalculation: (e) => e.bytes.length + ENTRY_OVERHEAD,
      ...(ttl > 0 ? { ttl, ttlAutopurge: false, allowStale: false, updateAgeOnGet: false, noUpdateTTL: true } : {}),
      dispose: (e, key, reason) => {
        if (reason === 'evict' || reason === 'expire') this.m.evictions.inc({ kind, reason });
        if (kind === 'tx' && reason !== 'set' && e.wtxid && this.#byWtxid.get(e.wtxid) === key) this.#byWtxid.delete(e.wtxid);
        if (kind === 'block' && reason !== 'set' && e.prev) this.#unlinkPrev(e.prev, key);
      },
    });
  }

  updateGauges(): void {
    for (const [kind, c] of [['block', this.blocks], ['tx', this.txs]] as const) {
      this.m.entries.set(c?.size ?? 0, { kind });
      this.m.bytes.set(c?.calculatedSize ?? 0, { kind });
    }
  }

  static book(peer: HookPeer): PeerBook {
    let b = peer.state.get(STATE_KEY) as PeerBook | undefined;
    if (!b) {
      b = { announced: new Map(), pending: new Map(), forward: new Map(), filtered: false, stopHeaders: new Map(), cmpctAsked: 0 };
      peer.state.set(STATE_KEY, b);
    }
    return b;
  }

  // inbound getdata

  getdata(msg: HookMessage, peer: HookPeer): HookResult | Promise<HookResult | undefined> | undefined {
    if (!peer.handshakeComplete) return undefined; // bitcoind ignores it before verack; so do we
    let items: codec.InvVector[];
    try {
      items = msg.decode<codec.InvMessage>();
    } catch {
      return undefined; // bitcoind judges a malformed getdata
    }
    const book = BlockCache.book(peer);
    const now = Date.now();
    // bitcoind answers in request order: serve the leading run of cached items, forward the rest
    const hits: OutgoingMessage[] = [];
    let bytes = 0;
    for (const item of items) {
      if (bytes >= MAX_SERVED_PER_GETDATA) break;
      const found = this.#lookup(item, book, now);
      if (!found) break;
      hits.push(found);
      bytes += found.payload!.length;
    }
    const blocks = this.chainCheck ? items.slice(0, hits.length).filter((i) => cacheableKind(i.type) === 'block') : [];
    if (blocks.length === 0) return this.#answer(items, hits, book);
    // serve blocks only while bitcoind says they are in its active chain
    return this.chainCheck!.inActiveChain(blocks.map((i) => displayHex(i.hash))).then((inChain) => {
      let served = hits.length;
      let b = 0;
      for (let i = 0; i < hits.length && b < inChain.length; i++) {
        if (cacheableKind(items[i]!.type) !== 'block') continue;
        if (!inChain[b++]) {
          served = i;
          break;
        }
      }
      return this.#answer(items, hits.slice(0, served), book);
    });
  }

  /** Push `hits` (the first items), forward the rest in one getdata, remembering what was asked. */
  #answer(items: codec.InvVector[], hits: OutgoingMessage[], book: PeerBook): HookResult | undefined {
    for (const h of hits) {
      this.m.hits.inc({ kind: h.command });
      this.m.bytesServed.inc({ kind: h.command }, h.payload!.length);
    }
    const rest = items.slice(hits.length);
    for (const item of rest) {
      const kind = cacheableKind(item.type);
      if (kind) {
        this.m.misses.inc({ kind });
        const key = hex(item.hash);
        const before = book.pending.get(key);
        limitedSet(book.pending, key, before === undefined || before === item.type ? item.type : CONFLICT, PENDING_PER_PEER);
      } else if (item.type === InvType.CMPCT_BLOCK) {
        // bitcoind answers a deep block with a `block` (witness form for compact version 2 peers)
        book.cmpctAsked++;
        limitedSet(book.pending, hex(item.hash), book.pending.has(hex(item.hash)) ? CONFLICT : item.type, PENDING_PER_PEER);
      } else if (item.type === InvType.FILTERED_BLOCK || item.type === InvType.FILTERED_WITNESS_BLOCK) {
        book.filtered = true;
      } else {
        // unknown type or flag bits (Litecoin MWEB 0x20000000): an answer for this hash is not
        // ours to learn, nor any other answer for it until one came back
        limitedSet(book.pending, hex(item.hash), CONFLICT, PENDING_PER_PEER);
      }
    }
    if (hits.length === 0) return undefined;
    if (rest.length === 0) return { push: hits, action: 'drop' };
    return { push: hits, replace: { command: 'getdata', payload: codec.encodeMessage('getdata', rest) } };
  }

  #lookup(item: codec.InvVector, book: PeerBook, now: number): OutgoingMessage | null {
    const key = hex(item.hash);
    switch (item.type) {
      case InvType.BLOCK:
      case InvType.WITNESS_BLOCK: {
        if (!this.blocks) return null;
        if (book.forward.delete(key)) return null; // possible getblocks continuation: bitcoind's to answer
        const e = this.blocks.get(key);
        const payload = e && serialization(e, item.type === InvType.WITNESS_BLOCK, strippedBlock);
        return payload ? { command: 'block', payload } : null;
      }
      case InvType.TX:
      case InvType.WITNESS_TX:
      case InvType.WTX: {
        if (!this.txs) return null;
        const at = book.announced.get(key);
        if (at === undefined || now - at > this.#txTtlMs) return null; // bitcoind's anti-probing rule
        const txid = item.type === InvType.WTX ? this.#byWtxid.get(key) : key;
        const e = txid === undefined ? undefined : this.txs.get(txid);
        if (!e || (item.type === InvType.WTX && e.wtxid !== key)) return null;
        const payload = serialization(e, item.type !== InvType.TX, (b) => codec.RawTransaction.parse(b).stripped());
        return payload ? { command: 'tx', payload } : null;
      }
      default:
        return null;
    }
  }

  // outbound: what bitcoind sends the peer

  inv(msg: HookMessage, peer: HookPeer): void {
    let items: codec.InvVector[];
    try {
      items = msg.decode<codec.InvMessage>();
    } catch {
      return;
    }
    const book = BlockCache.book(peer);
    const now = Date.now();
    const blockHashes: string[] = [];
    for (const item of items) {
      if (item.type === InvType.TX || item.type === InvType.WTX || item.type === InvType.WITNESS_TX) {
        limitedSet(book.announced, hex(item.hash), now, this.options.announcedPerPeer);
      } else if (item.type === InvType.BLOCK || item.type === InvType.WITNESS_BLOCK) {
        blockHashes.push(hex(item.hash));
      }
    }
    // bitcoind answers getblocks with up to 500 block invs and sends a continuation inv when the
    // peer asks for the last of them (hashContinue). That request must reach bitcoind: keep the
    // last block of every inv, and every block from the 500th on, out of the cache's hands.
    if (blockHashes.length > 0) {
      const from = Math.min(blockHashes.length - 1, GETBLOCKS_LIMIT - 1);
      for (let i = from; i < blockHashes.length; i++) limitedSet(book.forward, blockHashes[i]!, true, 64);
    }
  }

  block(msg: HookMessage, peer: HookPeer): void {
    if (!this.blocks || msg.payload.length < 80) return;
    const key = hex(codec.blockHash(msg.payload));
    const asked = takePending(peer, key);
    if (asked === InvType.CMPCT_BLOCK) {
      const book = BlockCache.book(peer);
      book.cmpctAsked = Math.max(0, book.cmpctAsked - 1);
    }
    // Only answers to a block request we saw: their serialization is known.
    if (asked !== InvType.BLOCK && asked !== InvType.WITNESS_BLOCK && asked !== InvType.CMPCT_BLOCK) return;
    let block: codec.RawBlock;
    try {
      block = msg.decode<codec.RawBlock>(); // also checks the checksum
    } catch {
      return;
    }
    const hasWitness = block.txs.some((tx) => tx.hasWitness);
    const prev = hex(msg.payload.subarray(4, 36));
    if (this.#store(this.blocks, key, msg.payload, hasWitness || asked === InvType.WITNESS_BLOCK, hasWitness, undefined, prev)) {
      let siblings = this.#byPrev.get(prev);
      if (!siblings) this.#byPrev.set(prev, (siblings = new Set()));
      siblings.add(key);
    }
  }

  /**
   * A getheaders with an empty locator asks for the one header of hashStop, which bitcoind also
   * sends for a recent block outside its active chain: that answer says nothing of the chain.
   */
  getheaders(msg: HookMessage, peer: HookPeer): undefined {
    if (!this.blocks) return undefined;
    try {
      const m = msg.decode<codec.LocatorMessage>();
      if (m.locator.length === 0) limitedSet(BlockCache.book(peer).stopHeaders, hex(m.hashStop), true, 64);
    } catch {
      /* bitcoind judges a malformed getheaders */
    }
    return undefined;
  }

  /** bitcoind's headers (announcements and getheaders answers) are in its active chain, but for a hashStop asked alone. */
  headers(msg: HookMessage, peer: HookPeer): void {
    if (!this.blocks || this.#byPrev.size === 0) return;
    let headers: codec.BlockHeader[];
    try {
      headers = msg.decode<codec.HeadersMessage>();
    } catch {
      return;
    }
    const asked = BlockCache.book(peer).stopHeaders;
    for (const h of headers) {
      const key = hex(codec.blockHash(h));
      if (!asked.delete(key)) this.#inActiveChain(key, hex(h.prevBlock));
    }
  }

  /** A block of bitcoind's active chain: cached blocks on the same parent are not (any more). */
  #inActiveChain(key: string, prev: string): void {
    const siblings = this.#byPrev.get(prev);
    if (!siblings) return;
    for (const other of [...siblings]) if (other !== key) this.#dropStale(other);
  }

  /** Drop a block that left bitcoind's active chain, and its cached descendants. */
  #dropStale(key: string): void {
    if (this.blocks!.delete(key)) this.m.evictions.inc({ kind: 'block', reason: 'stale' });
    for (const child of [...(this.#byPrev.get(key) ?? [])]) this.#dropStale(child);
    this.updateGauges();
  }

  #unlinkPrev(prev: string, key: string): void {
    const siblings = this.#byPrev.get(prev);
    if (!siblings) return;
    siblings.delete(key);
    if (siblings.size === 0) this.#byPrev.delete(prev);
  }

  tx(msg: HookMessage, peer: HookPeer): void {
    if (!this.txs) return;
    let tx: codec.RawTransaction;
    try {
      tx = msg.decode<codec.RawTransaction>();
    } catch {
      return;
    }
    const txid = hex(tx.txid());
    const wtxid = tx.hasWitness ? hex(tx.wtxid()) : txid;
    const asked = takePending(peer, txid) ?? (wtxid !== txid ? takePending(peer, wtxid) : undefined);
    if (asked !== InvType.TX && asked !== InvType.WITNESS_TX && asked !== InvType.WTX) return;
    // A no-witness answer to a witness request is the witness form too, unless the peer also
    // asked for filtered blocks: then a stripped tx bitcoind sent after a merkleblock could be it.
    const witness = tx.hasWitness || (asked !== InvType.TX && !BlockCache.book(peer).filtered);
    if (this.#store(this.txs, txid, msg.payload, witness, tx.hasWitness, witness ? wtxid : undefined) && witness) this.#byWtxid.set(wtxid, txid);
  }

  /** bitcoind had nothing: forget what we were waiting for. */
  notfound(msg: HookMessage, peer: HookPeer): void {
    try {
      const book = BlockCache.book(peer);
      for (const item of msg.decode<codec.InvMessage>()) book.pending.delete(hex(item.hash));
    } catch {
      /* bitcoind's business */
    }
  }

  /**
   * A cmpctblock answers a MSG_CMPCT_BLOCK request (no `block` follows for it), or, unasked,
   * announces bitcoind's new tip. While the peer has compact requests unanswered, one that does
   * not match a remembered request (asked twice, or forgotten) may still answer one, for a stale
   * block: it is taken for an answer, not for the active chain.
   */
  cmpctblock(msg: HookMessage, peer: HookPeer): void {
    if (msg.payload.length < 80) return;
    const key = hex(codec.blockHash(msg.payload));
    const book = BlockCache.book(peer);
    takePending(peer, key);
    if (book.cmpctAsked > 0) book.cmpctAsked--;
    else if (this.blocks) this.#inActiveChain(key, hex(msg.payload.subarray(4, 36)));
  }

  /** Returns true when stored. Never downgrades a witness entry to a stripped-only one. */
  #store(cache: LRUCache<string, Entry>, key: string, payload: Buffer, witness: boolean, hasWitness: boolean, wtxid?: string, prev?: string): boolean {
    const old = cache.peek(key);
    if (old && (old.witness || !witness)) return false;
    // The payload is a view into the session's read buffer, which is reused: copy it.
    const entry: Entry = { bytes: Buffer.from(payload), witness, hasWitness, ...(wtxid ? { wtxid } : {}), ...(prev ? { prev } : {}) };
    cache.set(key, entry);
    this.updateGauges();
    return cache.has(key); // an entry larger than the whole cache is not stored
  }
}

/** The requested form of an entry, or null when only the other form is known. */
function serialization(e: Entry, wantWitness: boolean, strip: (b: Buffer) => Buffer): Buffer | null {
  if (wantWitness) return e.witness ? e.bytes : null;
  if (!e.witness || !e.hasWitness) return e.bytes;
  try {
    return strip(e.bytes);
  } catch {
    return null;
  }
}

function cacheableKind(type: number): Kind | null {
  if (type === InvType.BLOCK || type === InvType.WITNESS_BLOCK) return 'block';
  if (type === InvType.TX || type === InvType.WITNESS_TX || type === InvType.WTX) return 'tx';
  return null;
}

function takePending(peer: HookPeer, key: string): number | undefined {
  const book = BlockCache.book(peer);
  const t = book.pending.get(key);
  if (t !== undefined) book.pending.delete(key);
  return t;
}

/** One cache per loaded instance (a reload or a second listing gets its own). */
const instances = new WeakMap<HookContext, BlockCache>();

function metrics(ctx: HookContext): Metrics {
  const mx = ctx.metrics;
  return {
    hits: mx.counter('block_cache_hits_total', 'getdata items answered from the block cache, by kind (block, tx)', ['kind']),
    misses: mx.counter('block_cache_misses_total', 'cacheable getdata items forwarded to bitcoind, by kind', ['kind']),
    bytesServed: mx.counter('block_cache_served_bytes_total', 'payload bytes answered from the block cache, by kind', ['kind']),
    evictions: mx.counter('block_cache_evictions_total', 'entries dropped from the block cache, by kind and reason (evict: size, expire: ttl, stale: left bitcoind\'s active chain)', ['kind', 'reason']),
    entries: mx.gauge('block_cache_entries', 'entries in the block cache, by kind', ['kind']),
    bytes: mx.gauge('block_cache_bytes', 'bytes the block cache accounts for, by kind', ['kind']),
    checks: mx.counter('block_cache_chain_checks_total', 'cached blocks checked with bitcoind\'s getblockheader (rpc), by outcome (in_chain, not_in_chain, error)', ['outcome']),
  };
}

export default defineHook<BlockCacheOptions>({
  apiVersion: HOOK_API_VERSION,
  name: 'block-cache',
  options: blockCacheOptions,
  wants: { inbound: ['getdata', 'getheaders'], outbound: ['block', 'tx', 'inv', 'notfound', 'cmpctblock', 'headers'] },
  init(options, ctx) {
    const cache = new BlockCache(options, metrics(ctx));
    cache.updateGauges();
    instances.set(ctx, cache);
  },
  onMessage(msg, peer, ctx) {
    const cache = instances.get(ctx);
    if (!cache) return undefined;
    if (msg.direction === 'inbound') return msg.command === 'getdata' ? cache.getdata(msg, peer) : msg.command === 'getheaders' ? cache.getheaders(msg, peer) : undefined;
    switch (msg.command) {
      case 'block':
        cache.block(msg, peer);
        break;
      case 'tx':
        cache.tx(msg, peer);
        break;
      case 'inv':
        cache.inv(msg, peer);
        break;
      case 'notfound':
        cache.notfound(msg, peer);
        break;
      case 'cmpctblock':
        cache.cmpctblock(msg, peer);
        break;
      case 'headers':
        cache.headers(msg, peer);
        break;
    }
    return undefined;
  },

});
