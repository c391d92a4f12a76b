import { PayloadError } from '../errors.js';
import { COMMAND_SIZE } from '../header.js';
import { readBoolByte, writeBoolByte } from './common.js';
import { defineCodec, emptyCodec } from './registry.js';

// Messages whose payload is empty.
export const verack = emptyCodec('verack');
export const getaddr = emptyCodec('getaddr');
export const mempool = emptyCodec('mempool');
export const sendheaders = emptyCodec('sendheaders');
/** BIP155: sent between version and verack */
export const sendaddrv2 = emptyCodec('sendaddrv2');
/** BIP339: sent between version and verack */
export const wtxidrelay = emptyCodec('wtxidrelay');

/** ping: a nonce, absent only from peers older than BIP31 (protocol 60001), for whom bitcoind reads none. */
export interface PingMessage {
  nonce?: bigint;
}

export const ping = defineCodec<PingMessage>({
  command: 'ping',
  decode: (r) => (r.remaining === 0 ? {} : { nonce: r.u64('nonce') }),
  encode(w, m) {
    if (m.nonce !== undefined) w.u64(m.nonce);
  },
});

export interface PongMessage {
  nonce: bigint;
}

export const pong = defineCodec<PongMessage>({
  command: 'pong',
  decode: (r) => ({ nonce: r.u64('nonce') }),
  encode: (w, m) => void w.u64(m.nonce),
});

/** BIP152 sendcmpct. */
export interface SendCmpctMessage {
  /** high-bandwidth mode: announce new blocks with cmpctblock */
  announce: boolean;
  /** compact block version (2 with witnesses) */
  version: bigint;
  /** the announce byte when it was neither 0 nor 1 (bitcoind takes any non-zero byte as true), kept for an exact round trip */
  announceByte?: number;
}

export const sendcmpct = defineCodec<SendCmpctMessage>({
  command: 'sendcmpct',
  decode(r) {
    const { value, odd } = readBoolByte(r, 'announce');
    const m: SendCmpctMessage = { announce: value, version: r.u64('version') };
    if (odd !== undefined) m.announceByte = odd;
    return m;
  },
  encode: (w, m) => void writeBoolByte(w, m.announce, m.announceByte).u64(m.version),
});

/** BIP133 feefilter. */
export interface FeeFilterMessage {
  /** satoshis per 1000 virtual bytes (int64, a CAmount) */
  feeRate: bigint;
}

export const feefilter = defineCodec<FeeFilterMessage>({
  command: 'feefilter',
  decode: (r) => ({ feeRate: r.i64('feeRate') }),
  encode: (w, m) => void w.i64(m.feeRate),
});

/** The longest reason bitcoind ever sent or read in a reject (MAX_REJECT_MESSAGE_LENGTH). */
export const MAX_REJECT_MESSAGE_LENGTH = 111;

/** BIP61 reject (removed from bitcoind in 0.20, still sent by other software). */
export interface RejectMessage {
  /** the command being rejected */
  message: string;
  /** REJECT_* code */
  code: number;
  reason: string;
  /**
   * Whatever follows the reason: the 32-byte hash of the rejected tx or block by BIP61, but
   * kept raw (any length) so that any reject round-trips exactly. Absent when nothing follows.
   */
  data?: Buffer;
}

export const RejectCode = Object.freeze({
  MALFORMED: 0x01,
  INVALID: 0x10,
  OBSOLETE: 0x11,
  DUPLICATE: 0x12,
  NONSTANDARD: 0x40,
  DUST: 0x41,
  INSUFFICIENTFEE: 0x42,
  CHECKPOINT: 0x43,
});

export const reject = defineCodec<RejectMessage>({
  command: 'reject',
  decode(r) {
    const m: RejectMessage = {
      message: r.varString('message', COMMAND_SIZE),
      code: r.u8('code'),
      reason: r.varString('reason', MAX_REJECT_MESSAGE_LENGTH),
    };
    if (r.remaining > 0) m.data = r.bytes(r.remaining, 'data');
    return m;
  },
  encode(w, m) {
    if (m.message.length > COMMAND_SIZE || m.reason.length > MAX_REJECT_MESSAGE_LENGTH) {
      throw new PayloadError('LIMIT', 'reject', `message is limited to ${COMMAND_SIZE} and reason to ${MAX_REJECT_MESSAGE_LENGTH} bytes`);
    }
    w.varString(m.message).u8(m.code).varString(m.reason);
    if (m.data) w.bytes(m.data);
  },
});

/** BIP434 limits on the feature message. */
export const MIN_FEATURE_ID_LENGTH = 4;
export const MAX_FEATURE_ID_LENGTH = 80;
export const MAX_FEATURE_DATA_LENGTH = 512;

/** BIP434 feature: announces one feature between version and verack (peers of protocol 70017+). */
export interface FeatureMessage {
  /** 4 to 80 bytes, printable ASCII by recommendation (latin1 so that any byte round-trips) */
  featureId: string;
  /** up to 512 bytes, interpreted by the feature's own specification */
  data: Buffer;
}

function featureIdError(len: number): PayloadError | undefined {
  if (len > MAX_FEATURE_ID_LENGTH) return new PayloadError('LIMIT', 'feature', `feature id of ${len} bytes, above the limit of ${MAX_FEATURE_ID_LENGTH}`);
  if (len < MIN_FEATURE_ID_LENGTH) return new PayloadError('INVALID', 'feature', `feature id of ${len} bytes, below the minimum of ${MIN_FEATURE_ID_LENGTH}`);
  return undefined;
}

export const feature = defineCodec<FeatureMessage>({
  command: 'feature',
  decode(r) {
    const featureId = r.varString('featureId', MAX_FEATURE_ID_LENGTH);
    const err = featureIdError(featureId.length);
    if (err) throw err;
    return { featureId, data: r.varBytes('featureData', MAX_FEATURE_DATA_LENGTH) };
  },
  encode(w, m) {
    const err = featureIdError(Buffer.byteLength(m.featureId, 'latin1'));
    if (err) throw err;
    if (m.data.length > MAX_FEATURE_DATA_LENGTH) {
      throw new PayloadError('LIMIT', 'feature', `feature data of ${m.data.length} bytes, above the limit of ${MAX_FEATURE_DATA_LENGTH}`);
    }
    w.varString(m.featureId).varBytes(m.data);
  },
});
