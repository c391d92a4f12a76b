import { PayloadError } from '../errors.js';
import { checkLength, type Hash, readCount, readDifferentialIndex, readHash, writeDifferentialIndex, writeHash } from './common.js';
import { type BlockHeader, readBlockHeader, writeBlockHeader } from './block.js';
import { defineCodec } from './registry.js';
import { MIN_TX_SIZE, type RawTransaction, readTransactions, skimTransaction, writeTransaction, writeTransactions } from './tx.js';

export const SHORTID_SIZE = 6;
/** Short ids plus prefilled transactions must index into a block of at most 65535 transactions (bitcoind). */
export const MAX_CMPCT_BLOCK_TXS = 0xffff;

export interface PrefilledTransaction {
  /** absolute position in the block (differentially encoded on the wire) */
  index: number;
  tx: RawTransaction;
}

/** BIP152 cmpctblock (bitcoind's CBlockHeaderAndShortTxIDs). */
export interface CmpctBlockMessage {
  header: BlockHeader;
  nonce: bigint;
  /** 6-byte short transaction ids */
  shortIds: Buffer[];
  prefilled: PrefilledTransaction[];
}

export const cmpctblock = defineCodec<CmpctBlockMessage>({
  command: 'cmpctblock',
  decode(r) {
    const header = readBlockHeader(r);
    const nonce = r.u64('nonce');
    const nShort = readCount(r, 'shortids', MAX_CMPCT_BLOCK_TXS, SHORTID_SIZE);
    const shortIds = new Array<Buffer>(nShort);
    for (let i = 0; i < nShort; i++) shortIds[i] = r.bytes(SHORTID_SIZE, `shortids[${i}]`);
    const nPre = readCount(r, 'prefilled', MAX_CMPCT_BLOCK_TXS - nShort, 1 + MIN_TX_SIZE);
    const prefilled = new Array<PrefilledTransaction>(nPre);
    let last = -1;
    for (let i = 0; i < nPre; i++) {
      last = readDifferentialIndex(r, last, `prefilled[${i}].index`);
      prefilled[i] = { index: last, tx: skimTransaction(r, `prefilled[${i}].tx`) };
    }
    return { header, nonce, shortIds, prefilled };
  },
  encode(w, m) {
    if (m.shortIds.length + m.prefilled.length > MAX_CMPCT_BLOCK_TXS) {
      throw new PayloadError('LIMIT', 'cmpctblock', `${m.shortIds.length + m.prefilled.length} transactions, above the limit of ${MAX_CMPCT_BLOCK_TXS}`);
    }
    writeBlockHeader(w, m.header, 'cmpctblock').u64(m.nonce).compactSize(m.shortIds.length);
    for (const id of m.shortIds) w.bytes(checkLength(id, SHORTID_SIZE, 'cmpctblock', 'short id'));
    w.compactSize(m.prefilled.length);
    let last = -1;
    for (const p of m.prefilled) {
      writeDifferentialIndex(w, p.index, last, 'cmpctblock', 'prefilled index');
      last = p.index;
      writeTransaction(w, p.tx);
    }
  },
});

/** BIP152 getblocktxn (bitcoind's BlockTransactionsRequest). */
export interface GetBlockTxnMessage {
  blockHash: Hash;
  /** absolute, increasing transaction positions (differentially encoded on the wire) */
  indexes: number[];
}

export const getblocktxn = defineCodec<GetBlockTxnMessage>({
  command: 'getblocktxn',
  decode(r) {
    const blockHash = readHash(r, 'blockHash');
    const n = readCount(r, 'indexes', MAX_CMPCT_BLOCK_TXS + 1, 1);
    const indexes = new Array<number>(n);
    let last = -1;
    for (let i = 0; i < n; i++) indexes[i] = last = readDifferentialIndex(r, last, `indexes[${i}]`);
    return { blockHash, indexes };
  },
  encode(w, m) {
    writeHash(w, m.blockHash, 'getblocktxn', 'blockHash');
    w.compactSize(m.indexes.length);
    let last = -1;
    for (const index of m.indexes) {
      writeDifferentialIndex(w, index, last, 'getblocktxn', 'index');
      last = index;
    }
  },
});

/** BIP152 blocktxn (bitcoind's BlockTransactions). */
export interface BlockTxnMessage {
  blockHash: Hash;
  txs: RawTransaction[];
}

export const blocktxn = defineCodec<BlockTxnMessage>({
  command: 'blocktxn',
  decode: (r) => ({ blockHash: readHash(r, 'blockHash'), txs: readTransactions(r, 'txs') }),
  encode(w, m) {
    writeHash(w, m.blockHash, 'blocktxn', 'blockHash');
    writeTransactions(w, m.txs);
  },
});
