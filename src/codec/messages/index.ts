import type { Frame } from '../frame.js';
import { encodeFrame } from '../frame.js';
import type { Network } from '../networks.js';
import type { AddrMessage, AddrV2Message } from './addr.js';
import type { RawBlock, HeadersMessage } from './block.js';
import type { BlockTxnMessage, CmpctBlockMessage, GetBlockTxnMessage } from './compact.js';
import type { FeatureMessage, FeeFilterMessage, PingMessage, PongMessage, RejectMessage, SendCmpctMessage } from './control.js';
import type { InvMessage } from './inventory.js';
import type { LocatorMessage } from './locator.js';
import { decodePayload, encodePayload } from './registry.js';
import type { RawTransaction } from './tx.js';
import type { VersionMessage } from './version.js';

export * from './registry.js';
export * from './common.js';
export * from './version.js';
export * from './control.js';
export * from './inventory.js';
export * from './locator.js';
export * from './addr.js';
export * from './tx.js';
export * from './block.js';
export * from './compact.js';

type Empty = Record<string, never>;

/** The decoded type of every command that has a codec. */
export interface MessageTypes {
  version: VersionMessage;
  verack: Empty;
  getaddr: Empty;
  mempool: Empty;
  sendheaders: Empty;
  sendaddrv2: Empty;
  wtxidrelay: Empty;
  ping: PingMessage;
  pong: PongMessage;
  sendcmpct: SendCmpctMessage;
  feefilter: FeeFilterMessage;
  reject: RejectMessage;
  feature: FeatureMessage;
  inv: InvMessage;
  getdata: InvMessage;
  notfound: InvMessage;
  getheaders: LocatorMessage;
  getblocks: LocatorMessage;
  headers: HeadersMessage;
  addr: AddrMessage;
  addrv2: AddrV2Message;
  tx: RawTransaction;
  block: RawBlock;
  cmpctblock: CmpctBlockMessage;
  getblocktxn: GetBlockTxnMessage;
  blocktxn: BlockTxnMessage;
}

export type KnownCommand = keyof MessageTypes;

/** decodePayload typed by command. */
export function decodeMessage<C extends KnownCommand>(command: C, payload: Buffer): MessageTypes[C] {
  return decodePayload<MessageTypes[C]>(command, payload);
}

/** encodePayload typed by command. */
export function encodeMessage<C extends KnownCommand>(command: C, value: MessageTypes[C]): Buffer {
  return encodePayload(command, value);
}

/**
 * Decode a frame's payload with its command's codec, checking the checksum first (the `lazy`
 * policy's check; a no-op when the decoder already checked it). Throws FrameError
 * BAD_CHECKSUM or PayloadError; a command without codec is PayloadError INVALID.
 */
export function decodeFrame<T = unknown>(frame: Frame): T {
  frame.assertChecksum();
  return decodePayload<T>(frame.command, frame.payload);
}

/** Encode `value` with the codec of `command` and wrap it in a frame for `network`. */
export function buildFrame<C extends KnownCommand>(network: Network, command: C, value: MessageTypes[C]): Frame;
export function buildFrame(network: Network, command: string, value: unknown): Frame;
export function buildFrame(network: Network, command: string, value: unknown): Frame {
  return encodeFrame(network, command, encodePayload(command, value));
}
