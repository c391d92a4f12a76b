/**
 * block-cache (hooks/block-cache.ts, docs/hooks/block-cache.md).
 *
 * Unit tests load the compiled module by path through `bitcoin-hook-proxy/testing` (the real
 * loader and chain runner, fake peers). Their blocks and transactions are real: the ones
 * Bitcoin Core sent in test/fixtures/bitcoind-capture (-capturemessages of Core's functional
 * tests); the expected stripped forms are built independently with bitcoinjs-lib.
 *
 * The end-to-end tests run the real proxy with the hook in front of a real regtest litecoind
 * (Debian's Litecoin Core 0.21.2.1 = Bitcoin Core 0.21's P2P code) and use the raw P2P client
 * (test/support/p2p-client.ts) as the requesting peer, and litecoind's getpeerinfo
 * bytessent_per_msg to see what litecoind itself sent. A second test puts a bcoin 1.0.2 node
 * (a Bitcoin full node in JS) behind it as the requesting peer, which validates every block it
 * gets from the cache.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Block, Transaction } from 'bitcoinjs-lib';
import { blockHash, decodeMessage, hash256, hashFromHex, InvType, RawBlock, RawTransaction, type Frame, type InvVector } from '../../src/codec/index.js';
import { createHookHarness, type FakePeer, type TestHarness } from '../../src/hooks/testing.js';
import { captureFiles } from '../codec/support-fixtures.js';
import { bcoinAvailable, startBcoin } from '../support/bcoin-node.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { waitFor } from '../support/wait.js';
import { hooksYaml } from './support.js';
import { cleanupStack } from '../support/cleanup.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** the compiled module, dist/hooks/block-cache.js, loaded by path like a third-party module */
const HOOK = path.resolve(here, '../../hooks/block-cache.js');

// ---------------------------------------------------------------------------------------------
// Real payloads bitcoind sent (Core functional-test captures)

interface Fixtures {
  /** blocks carrying witness data (witness serialization, as Core sent them) */
  witnessBlocks: Buffer[];
  /** blocks without witness data */
  plainBlocks: Buffer[];
  witnessTxs: Buffer[];
  plainTxs: Buffer[];
}

let fixtures: Fixtures | null = null;
function fx(): Fixtures {
  if (fixtures) return fixtures;
  const f: Fixtures = { witnessBlocks: [], plainBlocks: [], witnessTxs: [], plainTxs: [] };
  const seen = new Set<string>();
  for (const file of captureFiles()) {
    if (!file.name.endsWith('msgs_sent.dat') && !file.name.endsWith('msgs_recv.dat')) continue;
    for (const r of file.records) {
      const key = `${r.command}:${hash256(r.payload).toString('hex')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      try {
        if (r.command === 'block') {
          const b = RawBlock.parse(r.payload);
          (b.txs.some((t) => t.hasWitness) ? f.witnessBlocks : f.plainBlocks).push(Buffer.from(r.payload));
        } else if (r.command === 'tx') {
          (RawTransaction.parse(r.payload).hasWitness ? f.witnessTxs : f.plainTxs).push(Buffer.from(r.payload));
        }
      } catch {
        /* some captures hold deliberately invalid messages */
      }
    }
  }
  assert.ok(f.witnessBlocks.length >= 1 && f.plainBlocks.length >= 3 && f.witnessTxs.length >= 2 && f.plainTxs.length >= 1, 'fixtures have the payloads these tests need');
  return (fixtures = f);
}

/** A block in witness form with several transactions: a real witness block's header and coinbase plus real witness and plain txs. */
function multiTxWitnessBlock(): Buffer {
  const f = fx();
  const base = RawBlock.parse(f.witnessBlocks[0]!);
  const txs = [base.txs[0]!.raw, f.witnessTxs[0]!, f.plainTxs[0]!, f.witnessTxs[1]!];
  const header = Buffer.from(base.raw.subarray(0, 80));
  header[79] = header[79]! ^ 0xff; // another nonce: another block hash than the real block's
  return Buffer.concat([header, Buffer.from([txs.length]), ...txs]);
}

/** The stripped serialization, by bitcoinjs-lib (independent of the hook's own stripping). */
function strippedByBitcoinjs(witnessForm: Buffer): Buffer {
  const block = Block.fromBuffer(witnessForm);
  const txs = (block.transactions ?? []).map((tx) => {
    const t = tx.clone();
    for (const input of t.ins) input.witness = [];
    return Buffer.from(t.toBuffer());
  });
  const n = txs.length;
  const count = n < 0xfd ? Buffer.from([n]) : Buffer.from([0xfd, n & 0xff, n >> 8]);
  return Buffer.concat([witnessForm.subarray(0, 80), count, ...txs]);
}

function strippedTxByBitcoinjs(witnessForm: Buffer): Buffer {
  const t = Transaction.fromBuffer(witnessForm);
  for (const input of t.ins) input.witness = [];
  return Buffer.from(t.toBuffer());
}

const blockHashOf = (b: Buffer) => hash256(b.subarray(0, 80));
const txidOf = (t: Buffer) => RawTransaction.parse(t).txid();
const wtxidOf = (t: Buffer) => RawTransaction.parse(t).wtxid();

// ---------------------------------------------------------------------------------------------
// Unit tests

async function harness(options: Record<string, unknown> = {}): Promise<TestHarness> {
  return createHookHarness([{ module: HOOK, options }]);
}

/** What bitcoind does: the peer asks, the hook forwards, bitcoind answers through the hook. */
async function bitcoindServes(h: TestHarness, peer: FakePeer, item: InvVector, command: 'block' | 'tx', payload: Buffer): Promise<void> {
  const d = await h.deliver(peer, 'inbound', 'getdata', [item]);
  assert.equal(d.forwarded?.command, 'getdata', 'a miss goes to bitcoind');
  assert.deepEqual(decodeMessage('getdata', d.forwarded.payload), [item]);
  const out = await h.deliver(peer, 'outbound', command, payload);
  assert.ok(out.forwarded?.payload.equals(payload), 'bitcoind\'s answer reaches the peer unchanged');
}

/** Ask for items; returns what was pushed from the cache and what went on to bitcoind. */
async function ask(h: TestHarness, peer: FakePeer, items: InvVector[]): Promise<{ pushed: { command: string; payload: Buffer }[]; forwarded: InvVector[] | null }> {
  const before = peer.pushed.length;
  const d = await h.deliver(peer, 'inbound', 'getdata', items);
  const pushed = peer.pushed.slice(before).map((m) => ({ command: m.command, payload: Buffer.from(m.payload ?? []) }));
  return { pushed, forwarded: d.forwarded ? decodeMessage('getdata', d.forwarded.payload) : null };
}

test('unit: a witness request gets the witness form bitcoind sent, a non-witness request the stripped form (equal to bitcoinjs-lib\'s)', async () => {
  const h = await harness();
  try {
    const [a, b] = [h.peer(), h.peer()];
    for (const block of [fx().witnessBlocks[0]!, multiTxWitnessBlock()]) {
      const hash = blockHashOf(block);
      await bitcoindServes(h, a, { type: InvType.WITNESS_BLOCK, hash }, 'block', block);
      const w = await ask(h, b, [{ type: InvType.WITNESS_BLOCK, hash }]);
      assert.equal(w.forwarded, null, 'all hits: the getdata is dropped');
      assert.equal(w.pushed.length, 1);
      assert.equal(w.pushed[0]!.command, 'block');
      assert.ok(w.pushed[0]!.payload.equals(block), 'the exact bytes bitcoind sent');
      const s = await ask(h, b, [{ type: InvType.BLOCK, hash }]);
      assert.equal(s.forwarded, null);
      const expected = strippedByBitcoinjs(block);
      assert.ok(!expected.equals(block), 'the fixture really has witness data');
      assert.ok(s.pushed[0]!.payload.equals(expected), 'stripped form equals bitcoinjs-lib\'s');
      assert.ok(hash256(s.pushed[0]!.payload.subarray(0, 80)).equals(hash), 'same block');
    }
  } finally {
    await h.close();
  }
});

test('unit: a stripped answer to MSG_BLOCK is cached as the stripped form only: a witness request for it still goes to bitcoind', async () => {
  const h = await harness();
  try {
    const [a, b] = [h.peer(), h.peer()];
    const block = multiTxWitnessBlock();
    const hash = blockHashOf(block);
    const stripped = strippedByBitcoinjs(block);
    await bitcoindServes(h, a, { type: InvType.BLOCK, hash }, 'block', stripped);
    const w = await ask(h, b, [{ type: InvType.WITNESS_BLOCK, hash }]);
    assert.deepEqual(w.pushed, [], 'no witness form known');
    assert.deepEqual(w.forwarded, [{ type: InvType.WITNESS_BLOCK, hash }]);
    const s = await ask(h, b, [{ type: InvType.BLOCK, hash }]);
    assert.ok(s.pushed[0]?.payload.equals(stripped));
    // bitcoind's witness answer (to b's forwarded request) upgrades the entry
    await h.deliver(b, 'outbound', 'block', block);
    const again = await ask(h, a, [{ type: InvType.WITNESS_BLOCK, hash }]);
    assert.ok(again.pushed[0]?.payload.equals(block));

    // a block without witness data asked as MSG_WITNESS_BLOCK: both forms are those bytes
    const plain = fx().plainBlocks[0]!;
    await bitcoindServes(h, a, { type: InvType.WITNESS_BLOCK, hash: blockHashOf(plain) }, 'block', plain);
    const both = await ask(h, b, [{ type: InvType.BLOCK, hash: blockHashOf(plain) }, { type: InvType.WITNESS_BLOCK, hash: blockHashOf(plain) }]);
    assert.equal(both.forwarded, null);
    assert.ok(both.pushed.every((m) => m.payload.equals(plain)));
  } finally {
    await h.close();
  }
});

test('unit: a full block answering MSG_CMPCT_BLOCK is learned (witness form only if it carries witness data); compact requests themselves are always forwarded', async () => {
  const h = await harness();
  try {
    const [a, b] = [h.peer(), h.peer()];
    const plain = fx().plainBlocks[2]!;
    const wit = fx().witnessBlocks[0]!;
    for (const blk of [plain, wit]) {
      const item = { type: InvType.CMPCT_BLOCK, hash: blockHashOf(blk) };
      assert.deepEqual((await ask(h, a, [item])).forwarded, [item]);
      await h.deliver(a, 'outbound', 'block', blk); // a deep block: bitcoind sends it whole
      assert.deepEqual((await ask(h, b, [item])).forwarded, [item], 'compact requests go to bitcoind even when cached');
    }
    // no witness bytes: could be the stripped form of a segwit block, so only MSG_BLOCK is answered
    assert.deepEqual((await ask(h, b, [{ type: InvType.WITNESS_BLOCK, hash: blockHashOf(plain) }])).pushed, []);
    assert.ok((await ask(h, b, [{ type: InvType.BLOCK, hash: blockHashOf(plain) }])).pushed[0]?.payload.equals(plain));
    assert.ok((await ask(h, b, [{ type: InvType.WITNESS_BLOCK, hash: blockHashOf(wit) }])).pushed[0]?.payload.equals(wit));
  } finally {
    await h.close();
  }
});

test('unit: it never serves what bitcoind did not send in answer to a request it saw (unasked blocks, unknown hashes)', async () => {
  const h = await harness();
  try {
    const [a, b] = [h.peer(), h.peer()];
    const block = fx().plainBlocks[1]!;
    const hash = blockHashOf(block);
    assert.deepEqual((await ask(h, b, [{ type: InvType.WITNESS_BLOCK, hash }])).forwarded, [{ type: InvType.WITNESS_BLOCK, hash }]);
    // b's request is pending; a block sent to a (who asked nothing) is not learned
    await h.deliver(a, 'outbound', 'block', block);
    const r = await ask(h, a, [{ type: InvType.WITNESS_BLOCK, hash }]);
    assert.deepEqual(r.pushed, []);
    assert.deepEqual(r.forwarded, [{ type: InvType.WITNESS_BLOCK, hash }]);
  } finally {
    await h.close();
  }
});

test('unit: a transaction goes only to a peer bitcoind announced it to; MSG_WTX by wtxid gets the witness form, MSG_TX the stripped one', async () => {
  const h = await harness();
  try {
    const [a, b] = [h.peer(), h.peer()];
    const tx = fx().witnessTxs[0]!;
    const txid = txidOf(tx);
    const wtxid = wtxidOf(tx);
    assert.ok(!txid.equals(wtxid));
    // bitcoind announces by wtxid to a (wtxidrelay), a asks, bitcoind answers
    await h.deliver(a, 'outbound', 'inv', [{ type: InvType.WTX, hash: wtxid }]);
    await bitcoindServes(h, a, { type: InvType.WTX, hash: wtxid }, 'tx', tx);

    // b was never told: the cache must not answer (that would let anyone probe the mempool)
    for (const item of [{ type: InvType.WTX, hash: wtxid }, { type: InvType.TX, hash: txid }, { type: InvType.WITNESS_TX, hash: txid }]) {
      const r = await ask(h, b, [item]);
      assert.deepEqual(r.pushed, [], `type ${item.type} not served to b`);
      assert.deepEqual(r.forwarded, [item]);
    }
    // now bitcoind announces it to b (by txid, as to a peer without wtxidrelay)
    await h.deliver(b, 'outbound', 'inv', [{ type: InvType.TX, hash: txid }]);
    const byTxid = await ask(h, b, [{ type: InvType.TX, hash: txid }, { type: InvType.WITNESS_TX, hash: txid }]);
    assert.equal(byTxid.forwarded, null);
    assert.ok(byTxid.pushed[0]!.payload.equals(strippedTxByBitcoinjs(tx)), 'MSG_TX: stripped');
    assert.ok(byTxid.pushed[1]!.payload.equals(tx), 'MSG_WITNESS_TX: witness form');
    // announced by txid only: a wtxid request is not covered (as in bitcoind)
    assert.deepEqual((await ask(h, b, [{ type: InvType.WTX, hash: wtxid }])).pushed, []);
    // a, announced by wtxid, gets it by wtxid
    const wtx = await ask(h, a, [{ type: InvType.WTX, hash: wtxid }]);
    assert.ok(wtx.pushed[0]?.payload.equals(tx));
    assert.equal(wtx.forwarded, null);
  } finally {
    await h.close();
  }
});

test('unit: a transaction is not served after txTtl', async () => {
  const h = await harness({ txTtl: '50ms' });
  try {
    const a = h.peer();
    const tx = fx().plainTxs[0]!;
    const txid = txidOf(tx);
    await h.deliver(a, 'outbound', 'inv', [{ type: InvType.TX, hash: txid }]);
    await bitcoindServes(h, a, { type: InvType.TX, hash: txid }, 'tx', tx);
    assert.equal((await ask(h, a, [{ type: InvType.TX, hash: txid }])).pushed.length, 1);
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual((await ask(h, a, [{ type: InvType.TX, hash: txid }])).pushed, []);
  } finally {
    await h.close();
  }
});

test('unit: several items in one getdata: the leading cached items are pushed in request order, everything from the first miss on is forwarded in one getdata (bitcoind\'s answer order); filtered, compact, MWEB and unknown types always forwarded', async () => {
  const h = await harness();
  try {
    const [a, b] = [h.peer(), h.peer()];
    const [b1, b2, b3] = fx().plainBlocks;
    const tx = fx().witnessTxs[1]!;
    for (const blk of [b1!, b2!]) await bitcoindServes(h, a, { type: InvType.WITNESS_BLOCK, hash: blockHashOf(blk) }, 'block', blk);
    await h.deliver(a, 'outbound', 'inv', [{ type: InvType.WTX, hash: wtxidOf(tx) }]);
    await bitcoindServes(h, a, { type: InvType.WTX, hash: wtxidOf(tx) }, 'tx', tx);
    await h.deliver(b, 'outbound', 'inv', [{ type: InvType.WTX, hash: wtxidOf(tx) }]);

    const MWEB_BLOCK = 0x60000002; // litecoind's getdata for blocks: witness | MWEB flag
    const items: InvVector[] = [
      { type: InvType.WITNESS_BLOCK, hash: blockHashOf(b2!) },
      { type: InvType.WITNESS_BLOCK, hash: blockHashOf(b3!) }, // miss
      { type: InvType.FILTERED_BLOCK, hash: blockHashOf(b1!) },
      { type: InvType.WTX, hash: wtxidOf(tx) },
      { type: InvType.CMPCT_BLOCK, hash: blockHashOf(b1!) },
      { type: MWEB_BLOCK, hash: blockHashOf(b1!) },
      { type: 0x7f, hash: blockHashOf(b1!) },
      { type: InvType.BLOCK, hash: blockHashOf(b1!) },
    ];
    const r = await ask(h, b, items);
    assert.deepEqual(r.pushed.map((m) => m.command), ['block']);
    assert.ok(r.pushed[0]!.payload.equals(b2!));
    assert.deepEqual(r.forwarded, items.slice(1), 'the cached tx and b1 behind the miss go to bitcoind too, to keep its order');
    // all cached: all pushed, in request order
    const all = [items[0]!, items[3]!, items[7]!];
    const r2 = await ask(h, b, all);
    assert.equal(r2.forwarded, null);
    assert.ok(r2.pushed[0]!.payload.equals(b2!) && r2.pushed[1]!.payload.equals(tx) && r2.pushed[2]!.payload.equals(b1!));
    // a forwarded item is not served later in the same getdata
    const r3 = await ask(h, b, [items[0]!, items[6]!, items[7]!]);
    assert.equal(r3.pushed.length, 1);
    assert.deepEqual(r3.forwarded, [items[6], items[7]]);

    // litecoind's MWEB-flagged answer is not learned: its serialization rules are not ours
    const c = h.peer();
    assert.deepEqual((await ask(h, c, [{ type: MWEB_BLOCK, hash: blockHashOf(b3!) }])).forwarded, [{ type: MWEB_BLOCK, hash: blockHashOf(b3!) }]);
    await h.deliver(c, 'outbound', 'block', b3!);
    assert.deepEqual((await ask(h, c, [{ type: InvType.WITNESS_BLOCK, hash: blockHashOf(b3!) }])).pushed, []);
  } finally {
    await h.close();
  }
});

test('unit: bounded in bytes: the least recently used block is evicted', async () => {
  const [b1, b2, b3] = fx().plainBlocks;
  const budget = b1!.length + b2!.length + 400; // room for two of them with bookkeeping
  assert.ok(b3!.length <= b1!.length + 200, 'fixture blocks of similar size');
  const h = await harness({ maxBytes: budget });
  try {
    const a = h.peer();
    for (const blk of [b1!, b2!]) await bitcoindServes(h, a, { type: InvType.WITNESS_BLOCK, hash: blockHashOf(blk) }, 'block', blk);
    assert.equal((await ask(h, a, [{ type: InvType.WITNESS_BLOCK, hash: blockHashOf(b1!) }])).pushed.length, 1, 'b1 cached (and now most recently used)');
    await bitcoindServes(h, a, { type: InvType.WITNESS_BLOCK, hash: blockHashOf(b3!) }, 'block', b3!);
    const r = await ask(h, a, [b3!, b1!, b2!].map((blk) => ({ type: InvType.WITNESS_BLOCK, hash: blockHashOf(blk) })));
    assert.deepEqual(r.forwarded, [{ type: InvType.WITNESS_BLOCK, hash: blockHashOf(b2!) }], 'b2 was the least recently used');
    assert.deepEqual(r.pushed.map((m) => m.payload.length), [b3!.length, b1!.length]);
  } finally {
    await h.close();
  }
});

test('unit: nothing served before the handshake; a possible getblocks continuation block goes to bitcoind', async () => {
  const h = await harness();
  try {
    const a = h.peer();
    const [b1, b2] = fx().plainBlocks;
    for (const blk of [b1!, b2!]) await bitcoindServes(h, a, { type: InvType.WITNESS_BLOCK, hash: blockHashOf(blk) }, 'block', blk);
    const early = h.peer({ handshakeComplete: false });
    const item = { type: InvType.WITNESS_BLOCK, hash: blockHashOf(b1!) };
    const r = await ask(h, early, [item]);
    assert.deepEqual(r.pushed, []);
    assert.deepEqual(r.forwarded, [item]);

    // bitcoind's inv (its getblocks answer) ends with b2: the request for b2 must reach it, once
    const c = h.peer();
    await h.deliver(c, 'outbound', 'inv', [b1!, b2!].map((blk) => ({ type: InvType.BLOCK, hash: blockHashOf(blk) })));
    const items = [b1!, b2!].map((blk) => ({ type: InvType.WITNESS_BLOCK, hash: blockHashOf(blk) }));
    const first = await ask(h, c, items);
    assert.equal(first.pushed.length, 1);
    assert.deepEqual(first.forwarded, [items[1]]);
    assert.equal((await ask(h, c, items)).pushed.length, 2, 'only that once');
  } finally {
    await h.close();
  }
});

test('unit: a header bitcoind sends on the parent of a cached block drops that block and its cached descendants', async () => {
  const h = await harness();
  try {
    const a = h.peer();
    const b = Buffer.from(fx().plainBlocks[0]!);
    const child = Buffer.from(fx().plainBlocks[1]!);
    blockHashOf(b).copy(child, 4); // child's parent is b
    const other = Buffer.from(fx().plainBlocks[2]!);
    for (const blk of [b, child, other]) await bitcoindServes(h, a, { type: InvType.WITNESS_BLOCK, hash: blockHashOf(blk) }, 'block', blk);
    const header = (blk: Buffer) => decodeMessage('headers', Buffer.concat([Buffer.from([1]), blk.subarray(0, 80), Buffer.from([0])]))[0]!;
    const cached = async () => (await ask(h, a, [b, child, other].map((blk) => ({ type: InvType.WITNESS_BLOCK, hash: blockHashOf(blk) })))).pushed.length;
    // bitcoind's headers with b itself: b is in its chain, nothing changes
    await h.deliver(a, 'outbound', 'headers', [header(b)]);
    assert.equal(await cached(), 3);
    // another block on b's parent: b left bitcoind's chain, and child with it
    const sibling = Buffer.from(b.subarray(0, 80));
    sibling[79] = sibling[79]! ^ 0xff;
    await h.deliver(a, 'outbound', 'headers', [header(sibling)]);
    const r = await ask(h, a, [other, b, child].map((blk) => ({ type: InvType.WITNESS_BLOCK, hash: blockHashOf(blk) })));
    assert.equal(r.pushed.length, 1, 'only the unrelated block is still served');
    assert.deepEqual(r.forwarded?.map((i) => i.hash), [blockHashOf(b), blockHashOf(child)]);
  } finally {
    await h.close();
  }
});

test('unit: options are validated and named in the error', async () => {
  await assert.rejects(harness({ maxBytes: 'lots' }), /block-cache.*maxBytes/s);
  await assert.rejects(harness({ colour: 'red' }), /block-cache.*colour/s);
  await assert.rejects(harness({ txTtl: -1 }), /block-cache.*txTtl/s);
  await assert.rejects(harness({ announcedPerPeer: 1e9 }), /block-cache.*announcedPerPeer/s);
  const url = 'http://127.0.0.1:8332';
  for (const rpc of [{ url }, { url, user: 'u' }, { url, user: 'u', password: 'p', cookieFile: '/c' }, { url: 'https://x', cookieFile: '/c' }, { url, cookieFile: '/c', cacheTtl: 'soon' }, { url, cookieFile: '/c', timeout: 0 }]) {
    await assert.rejects(harness({ rpc }), /block-cache.*rpc/s, JSON.stringify(rpc));
  }
  // timeout 0 was taken as node's http "no timeout": a hung RPC then held every getdata of cached blocks until hookTimeout disconnected the peer
  await assert.rejects(harness({ rpc: { url, cookieFile: '/c', timeout: 0 } }), /options\.rpc\.timeout: a duration must be more than 0/);
  const h = await harness({ maxBytes: '64MiB', txMaxBytes: 0, txTtl: '2m', blockTtl: '1h', rpc: { url, cookieFile: '/c', cacheTtl: '500ms', timeout: '2s' } });
  await h.close();
});

// ---------------------------------------------------------------------------------------------
// Through the real proxy, in front of a real node

async function blockSent(node: Litecoind): Promise<number> {
  return (await node.getPeerInfo()).reduce((sum, p) => sum + (p.bytessent_per_msg.block ?? 0), 0);
}

/** getdata through the client; resolves with the `block` frames in arrival order. */
async function requestBlocks(client: P2PClient, items: InvVector[]): Promise<Frame[]> {
  const from = client.frames.length;
  client.send('getdata', items);
  await waitFor(() => client.frames.slice(from).filter((f) => f.command === 'block').length >= items.length, 20_000, `${items.length} blocks`);
  return client.frames.slice(from).filter((f) => f.command === 'block');
}

test('litecoind behind the proxy: the second request of the same blocks is answered from the cache, byte for byte, and litecoind sends no block', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'block-cache-backend' });
  cleanup.push(() => node.stop());
  await node.generate(101);
  // a block with a real segwit spend in it (the wallet's coinbase outputs are P2WPKH)
  await node.rpc('sendtoaddress', [await node.getNewAddress(), 1]);
  const [segwitHash] = await node.generate(1);
  const hashes = [...(await Promise.all([5, 50, 100].map((hgt) => node.getBlockHash(hgt)))), segwitHash!].map(hashFromHex);

  const proxy: TestProxy = await startTestProxy(node.p2pPort, hooksYaml([{ module: HOOK, options: { maxBytes: '16MiB' } }]), { metrics: true });
  cleanup.push(() => proxy.close());
  const client = await P2PClient.connect(proxy.port);
  cleanup.push(() => client.close());
  await client.handshake();
  // direct connection to litecoind, for its own answers to compare with
  const direct = await P2PClient.connect(node.p2pPort);
  cleanup.push(() => direct.close());
  await direct.handshake();

  const witnessItems = hashes.map((hash) => ({ type: InvType.WITNESS_BLOCK, hash }));
  const first = await requestBlocks(client, witnessItems);
  const sentAfterFirst = await blockSent(node);
  assert.ok(sentAfterFirst > 0, 'litecoind sent the blocks the first time');
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_hits_total'), 0);

  const second = await requestBlocks(client, witnessItems);
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_hits_total'), hashes.length, 'every block answered from the cache');
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_served_bytes_total'), first.reduce((n, f) => n + f.payload.length, 0));
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_entries', { kind: 'block' }), hashes.length);
  for (let i = 0; i < first.length; i++) assert.ok(second[i]!.payload.equals(first[i]!.payload), `block ${i}: the bytes litecoind sent`);
  const segwitBlock = RawBlock.parse(first[3]!.payload);
  assert.ok(segwitBlock.txs.some((tx, i) => i > 0 && tx.hasWitness), 'the last block carries a witness spend');
  await client.ping(); // everything the proxy had for us has arrived
  assert.equal(await blockSent(node), sentAfterFirst, 'litecoind sent no block for the second request (getpeerinfo bytessent_per_msg.block)');

  // non-witness request: served from the cache, and equal to what litecoind itself sends
  const strippedItem = [{ type: InvType.BLOCK, hash: hashes[3]! }];
  const fromCache = await requestBlocks(client, strippedItem);
  const fromNode = await requestBlocks(direct, strippedItem);
  assert.ok(!fromNode[0]!.payload.equals(first[3]!.payload), 'litecoind\'s stripped form differs from its witness form');
  assert.ok(fromCache[0]!.payload.equals(fromNode[0]!.payload), 'the stripped block from the cache is byte for byte what litecoind sends');
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_hits_total'), hashes.length + 1);

  // a mix: a hit and a miss in one getdata both arrive; litecoind sends only the miss
  const missHash = hashFromHex(await node.getBlockHash(7));
  const before = await blockSent(node);
  const mixed = await requestBlocks(client, [{ type: InvType.WITNESS_BLOCK, hash: hashes[0]! }, { type: InvType.WITNESS_BLOCK, hash: missHash }]);
  assert.deepEqual(mixed.map((f) => RawBlock.parse(f.payload).hash.toString('hex')).sort(), [hashes[0]!, missHash].map((h) => h.toString('hex')).sort());
  const grew = (await blockSent(node)) - before;
  assert.equal(grew, mixed.find((f) => RawBlock.parse(f.payload).hash.equals(missHash))!.raw.length, 'litecoind sent exactly the missed block');
});

test('bcoin behind the proxy: a bcoin node syncs through it; a second bcoin node then gets the same blocks from the cache and accepts them', { skip: bcoinAvailable() ? false : 'bcoin not installed', timeout: 120_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const backend = await startBcoin({ name: 'backend' });
  cleanup.push(() => backend.stop());
  await backend.mine(30);
  const proxy = await startTestProxy(backend.port, hooksYaml([{ module: HOOK, options: {} }]), { metrics: true });
  cleanup.push(() => proxy.close());

  // Without compact blocks bcoin asks MSG_WITNESS_BLOCK for every block (with them it asks
  // MSG_CMPCT_BLOCK, which the cache always forwards).
  const first = await startBcoin({ name: 'first', listen: false, only: [`127.0.0.1:${proxy.port}`], extra: { compact: false } });
  cleanup.push(() => first.stop());
  await first.waitForHeight(30, 60_000);
  const hitsAfterFirst = await proxy.metricValue('bhp_hook_block_cache_hits_total', { kind: 'block' });
  const cached = await proxy.metricValue('bhp_hook_block_cache_entries', { kind: 'block' });
  const served = await proxy.metricValue('bhp_messages_total', { command: 'block', direction: 'outbound' });
  assert.ok(served >= 30, `bcoin fetched ${served} full blocks`);
  assert.equal(cached, served, 'every full block bcoin served is cached');

  const second = await startBcoin({ name: 'second', listen: false, only: [`127.0.0.1:${proxy.port}`], extra: { compact: false } });
  cleanup.push(() => second.stop());
  await second.waitForHeight(30, 60_000);
  assert.equal(second.tipHash(), backend.tipHash(), 'the second node validated and connected the cached blocks');
  const hits = (await proxy.metricValue('bhp_hook_block_cache_hits_total', { kind: 'block' })) - hitsAfterFirst;
  // all but the last block of bitcoind's getblocks inv, which goes to the backend (continuation)
  assert.ok(hits >= cached - 1, `the second node's full blocks came from the cache (${hits} hits of ${cached})`);
  const servedTotal = await proxy.metricValue('bhp_messages_total', { command: 'block', direction: 'outbound' });
  assert.ok(servedTotal - served <= 1, `the backend served ${servedTotal - served} full blocks to the second node`);
});

/** litecoind's RPC credentials, from the arguments test/support/litecoind.ts started it with. */
function rpcOptions(node: Litecoind, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const arg = (name: string) => node.args.find((a) => a.startsWith(`-${name}=`))!.slice(name.length + 2);
  return { url: `http://127.0.0.1:${node.rpcPort}`, user: arg('rpcuser'), password: arg('rpcpassword'), ...extra };
}

/** Ask for blocks, then ping: once the pong is back, every answer litecoind or the cache had has arrived (bitcoind answers a getdata before later messages). */
async function blocksAnswered(client: P2PClient, items: InvVector[]): Promise<string[]> {
  const from = client.frames.length;
  client.send('getdata', items);
  await client.ping(20_000);
  return client.frames
    .slice(from)
    .filter((f) => f.command === 'block')
    .map((f) => RawBlock.parse(f.payload).hash.toString('hex'));
}

/** litecoind with `blocks` mined, the proxy with the hook in front, a client through it and one straight to litecoind. */
async function cacheSetup(t: TestContext, name: string, blocks: number, options: (node: Litecoind) => Record<string, unknown> = () => ({})) {
  const node = await startLitecoind({ name });
  t.after(() => node.stop());
  await node.generate(blocks);
  const proxy = await startTestProxy(node.p2pPort, hooksYaml([{ module: HOOK, options: options(node) }]), { metrics: true });
  t.after(() => proxy.close());
  const [client, direct] = await Promise.all([proxy.port, node.p2pPort].map((port) => P2PClient.connect(port)));
  for (const c of [client!, direct!]) {
    t.after(() => c.close());
    await c.handshake();
  }
  return { node, proxy, client: client!, direct: direct! };
}

test('litecoind behind the proxy: blocks the node invalidated are not served from the cache once its headers show another chain (no rpc)', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  const { node, proxy, client, direct } = await cacheSetup(t, 'block-cache-reorg', 10);
  client.send('sendheaders', {}); // litecoind may announce new blocks with headers

  const [h9, h10] = [await node.getBlockHash(9), await node.getBlockHash(10)];
  const items = [h9, h10].map((h) => ({ type: InvType.WITNESS_BLOCK, hash: hashFromHex(h) }));
  const wire = items.map((i) => i.hash.toString('hex'));
  assert.deepEqual(await blocksAnswered(client, items), wire, 'first request: litecoind answers');
  assert.deepEqual(await blocksAnswered(client, items), wire, 'second request: the cache answers');
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_hits_total', { kind: 'block' }), 2);

  await node.rpc('invalidateblock', [h9]); // 9 and 10 leave the active chain
  assert.deepEqual(await blocksAnswered(direct, items), [], 'litecoind no longer serves them');
  // documented: with nothing from the node to say so (no rpc, no new header yet), the cache cannot know
  assert.deepEqual(await blocksAnswered(client, items), wire, 'still served from the cache until the node shows another chain');

  const from = client.frames.length;
  const [h9b] = await node.generate(1, await node.getNewAddress()); // a new block 9 on block 8 (another coinbase)
  assert.notEqual(h9b, h9);
  // litecoind announces it (inv: it does not know which headers we have); we ask for the headers, as a node does
  await waitFor(() => client.frames.slice(from).some((f) => f.command === 'inv' || f.command === 'headers'), 20_000, 'the announcement of the new block');
  client.send('getheaders', { version: 70016, locator: [hashFromHex(await node.getBlockHash(8))], hashStop: Buffer.alloc(32) });
  await client.waitFor('headers', 20_000, (f) => decodeMessage('headers', f.payload).length > 0, from);
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_evictions_total', { kind: 'block', reason: 'stale' }), 2, 'block 9 and its child 10 dropped');
  const hits = await proxy.metricValue('bhp_hook_block_cache_hits_total', { kind: 'block' });
  assert.deepEqual(await blocksAnswered(client, items), [], 'as litecoind: nothing');
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_hits_total', { kind: 'block' }), hits);
  // the new block is served (by litecoind, then by the cache)
  const fresh = [{ type: InvType.WITNESS_BLOCK, hash: hashFromHex(h9b!) }];
  assert.equal((await blocksAnswered(client, fresh)).length, 1);
  assert.equal((await blocksAnswered(client, fresh)).length, 1);
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_hits_total', { kind: 'block' }), hits + 1);
});

test('litecoind behind the proxy with rpc: a block the node invalidated is not served from the cache, a block back in its chain is again', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  // cacheTtl 0: every request asks litecoind (a longer ttl is the window in which an answer can be stale);
  // the credentials come from a cookie file, as bitcoind's .cookie would give them
  const { node, proxy, client, direct } = await cacheSetup(t, 'block-cache-rpc', 10, (n) => {
    const { user, password, ...rest } = rpcOptions(n, { cacheTtl: 0 });
    const cookieFile = path.join(n.datadir, 'test.cookie');
    writeFileSync(cookieFile, `${String(user)}:${String(password)}\n`);
    return { rpc: { ...rest, cookieFile } };
  });

  const [h9, h10] = [await node.getBlockHash(9), await node.getBlockHash(10)];
  const [i9, i10] = [h9, h10].map((h) => ({ type: InvType.WITNESS_BLOCK, hash: hashFromHex(h) }));
  const [w9, w10] = [i9!, i10!].map((i) => i.hash.toString('hex'));
  assert.deepEqual(await blocksAnswered(client, [i9!, i10!]), [w9, w10]);
  assert.deepEqual(await blocksAnswered(client, [i9!, i10!]), [w9, w10]);
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_hits_total', { kind: 'block' }), 2);
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_chain_checks_total', { outcome: 'in_chain' }), 2);

  await node.rpc('invalidateblock', [h10]);
  assert.deepEqual(await blocksAnswered(direct, [i10!]), [], 'litecoind ignores the request');
  assert.deepEqual(await blocksAnswered(client, [i10!]), [], 'and so does the proxy: the cache does not serve it');
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_chain_checks_total', { outcome: 'not_in_chain' }), 1);
  // block 9 is still in the chain; 10 behind it goes to litecoind, which answers nothing
  assert.deepEqual(await blocksAnswered(client, [i9!, i10!]), [w9]);
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_hits_total', { kind: 'block' }), 3);

  const from = client.frames.length;
  await node.rpc('reconsiderblock', [h10]);
  // litecoind announces its tip 10 again; the last block of an inv is bitcoind's to answer once (getblocks continuation)
  await client.waitFor('inv', 20_000, (f) => decodeMessage('inv', f.payload).some((x) => x.hash.equals(i10!.hash)), from);
  assert.deepEqual(await blocksAnswered(client, [i10!]), [w10]);
  assert.deepEqual(await blocksAnswered(client, [i10!]), [w10]);
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_hits_total', { kind: 'block' }), 4, 'back in the chain: served from the cache');
});

test('litecoind behind the proxy with rpc that does not answer: the cache forwards every block (unsure means forwarded) and the peer is served by litecoind', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  // a wrong password: litecoind answers 401
  const { node, proxy, client } = await cacheSetup(t, 'block-cache-rpc-down', 3, (n) => ({ rpc: rpcOptions(n, { password: 'not-the-password' }) }));
  const item = { type: InvType.WITNESS_BLOCK, hash: hashFromHex(await node.getBlockHash(3)) };
  for (let i = 0; i < 2; i++) assert.deepEqual(await blocksAnswered(client, [item]), [item.hash.toString('hex')]);
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_hits_total'), 0);
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_chain_checks_total', { outcome: 'error' }), 1);
  assert.equal(client.isClosed, false);
});

test('litecoind behind the proxy: a getdata repeating one cached block is served from the cache only up to a bound per getdata; litecoind answers the rest, at the pace the peer reads', { skip: litecoindSkipReason(), timeout: 180_000 }, async (t) => {
  // bitcoind serves a getdata item by item and stops while its send buffer is full; the cache
  // pushed every item it had at once, each one a fresh copy (a frame, and for MSG_BLOCK of a
  // witness block a stripped block built again). One getdata of 50,000 items (MAX_INV_SZ, 1.8 MB)
  // naming one cached 2 MB block queued 100 GB in the proxy: out of memory, every peer gone.
  // Here a block of about 1 kB, 50,000 times: 50 MB would be queued by the cache at once.
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'block-cache-flood' });
  cleanup.push(() => node.stop());
  await node.generate(101);
  const outputs: Record<string, number> = {};
  for (let i = 0; i < 20; i++) outputs[await node.getNewAddress()] = 0.01;
  await node.rpc('sendmany', ['', outputs]); // a segwit spend with 20 outputs: the block has witness data
  const [hash] = (await node.generate(1)).map(hashFromHex);

  const proxy: TestProxy = await startTestProxy(node.p2pPort, hooksYaml([{ module: HOOK, options: { maxBytes: '16MiB' } }]), { metrics: true });
  cleanup.push(() => proxy.close());
  const client = await P2PClient.connect(proxy.port);
  cleanup.push(() => client.close());
  await client.handshake();
  await requestBlocks(client, [{ type: InvType.WITNESS_BLOCK, hash: hash! }]); // litecoind answers; now cached
  const [stripped] = await requestBlocks(client, [{ type: InvType.BLOCK, hash: hash! }]);
  const size = stripped!.payload.length;
  assert.ok(RawBlock.parse(stripped!.payload).txs.length === 2 && size > 800, `a block of ${size} bytes, stripped from the cached witness form`);
  const served = await proxy.metricValue('bhp_hook_block_cache_served_bytes_total', { kind: 'block' });
  const sentBefore = await blockSent(node);

  const n = 50_000;
  const answers = await requestBlocks(client, Array.from({ length: n }, () => ({ type: InvType.BLOCK, hash: hash! })));
  assert.equal(answers.length, n, 'every item answered');
  assert.ok(answers.every((f) => f.payload.equals(stripped!.payload)), 'each the stripped block');
  const fromCache = (await proxy.metricValue('bhp_hook_block_cache_served_bytes_total', { kind: 'block' })) - served;
  assert.ok(fromCache <= 16 * 1024 * 1024 + size, `the cache served ${fromCache} bytes for one getdata: at most 16 MiB`);
  assert.ok(fromCache > 0, 'the leading items still come from the cache');
  assert.equal((await blockSent(node)) - sentBefore, (n - fromCache / size) * (size + 24), 'litecoind sent the rest');
});

/** litecoind's block 8 made stale (invalidateblock, another block 8 and a child mined, reconsiderblock: valid but not active), the two active blocks cached. */
async function staleBlockSetup(t: TestContext, name: string) {
  const { node, proxy, client } = await cacheSetup(t, name, 8);
  const stale = await node.getBlockHash(8);
  await node.rpc('invalidateblock', [stale]);
  const [active] = await node.generate(1, await node.getNewAddress()); // another block 8, on block 7
  const [child] = await node.generate(1);
  await node.rpc('reconsiderblock', [stale]); // valid again, but not active: the same work came first
  assert.equal(await node.getBlockHash(8), active);
  const items = [active!, child!].map((h) => ({ type: InvType.WITNESS_BLOCK, hash: hashFromHex(h) }));
  const wire = items.map((i) => i.hash.toString('hex'));
  // litecoind announced both blocks to the client (inv): each one's first request from it goes to litecoind (getblocks continuation)
  for (let i = 0; i < 3; i++) assert.deepEqual(await blocksAnswered(client, items), wire);
  const hits = await proxy.metricValue('bhp_hook_block_cache_hits_total', { kind: 'block' });
  assert.ok(hits >= 2, 'the cache answers');
  return { proxy, client, stale, items, wire, hits };
}

test('litecoind behind the proxy: a peer cannot make the cache drop blocks of the active chain by asking litecoind for the header of a stale block', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  // bitcoind answers getheaders with an empty locator with the one header of hashStop, also for a
  // valid block outside its active chain (BlockRequestAllowed: recent stale blocks). The hook took
  // every header bitcoind sends as active chain, so that header dropped the active block on the
  // same parent and every cached block built on it: any peer could empty the cache of the recent
  // chain at will while a stale block was less than a month old.
  const { proxy, client, stale, items, wire, hits } = await staleBlockSetup(t, 'block-cache-stale-header');

  const from = client.frames.length;
  client.send('getheaders', { version: 70016, locator: [], hashStop: hashFromHex(stale) });
  const headers = await client.waitFor('headers', 20_000, undefined, from);
  assert.deepEqual(decodeMessage('headers', headers.payload).map((h) => blockHash(h).toString('hex')), [hashFromHex(stale).toString('hex')], 'litecoind sends the stale header');
  await client.ping();
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_evictions_total', { kind: 'block', reason: 'stale' }), 0, 'nothing dropped');
  assert.deepEqual(await blocksAnswered(client, items), wire);
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_hits_total', { kind: 'block' }), hits + 2, 'the active blocks are still served from the cache');
});

test('litecoind behind the proxy: compact-block answers to a peer\'s requests for a stale block are not taken for announcements of the active chain', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  // litecoind answers MSG_CMPCT_BLOCK for a recent block, stale or not, with a cmpctblock. The hook
  // took a cmpctblock it could not match to a request as bitcoind announcing a new tip; asking for
  // the same stale block twice in one getdata made the second answer unmatched (the request was
  // remembered once, as a conflict), and it dropped the active block on the same parent and every
  // cached block above it.
  const { proxy, client, stale, items, wire, hits } = await staleBlockSetup(t, 'block-cache-stale-cmpct');

  const from = client.frames.length;
  const cmpct = { type: InvType.CMPCT_BLOCK, hash: hashFromHex(stale) };
  client.send('getdata', [cmpct, cmpct]);
  await client.ping();
  assert.equal(client.frames.slice(from).filter((f) => f.command === 'cmpctblock').length, 2, 'litecoind answers both with a cmpctblock of the stale block');
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_evictions_total', { kind: 'block', reason: 'stale' }), 0, 'nothing dropped');
  assert.deepEqual(await blocksAnswered(client, items), wire);
  assert.equal(await proxy.metricValue('bhp_hook_block_cache_hits_total', { kind: 'block' }), hits + 2, 'the active blocks are still served from the cache');
});
