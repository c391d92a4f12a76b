import { FrameError } from './errors.js';

/** magic(4) + command(12) + length(4) + checksum(4) */
export const HEADER_SIZE = 24;
export const COMMAND_SIZE = 12;
/** bitcoind's MAX_PROTOCOL_MESSAGE_LENGTH (net.h). */
export const MAX_PROTOCOL_MESSAGE_LENGTH = 4_000_000;

/** The little-endian uint32 at `b[i..i+4)`; the caller checked the bounds. */
export function uint32At(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16)) + b[i + 3]! * 0x1000000;
}

/** The length of the frame whose (checked) header is at `buf[offset..]`: header plus declared payload. */
export function frameLengthAt(buf: Uint8Array, offset: number): number {
  return HEADER_SIZE + uint32At(buf, offset + 16);
}

/**
 * Validate the 12-byte command field at `buf[offset..offset+12]` the way bitcoind does
 * (CMessageHeader::IsMessageTypeValid): printable ASCII (0x20..0x7e), then only NUL padding.
 * Returns the command string, or throws FrameError('BAD_COMMAND').
 */
export function readCommand(buf: Buffer, offset: number): string {
  let end = offset + COMMAND_SIZE;
  for (let i = offset; i < offset + COMMAND_SIZE; i++) {
    const c = buf[i]!;
    if (c === 0) {
      end = i;
      for (let j = i + 1; j < offset + COMMAND_SIZE; j++) {
        if (buf[j] !== 0) throw new FrameError('BAD_COMMAND', `command field has data after NUL padding (byte ${j - offset})`);
      }
      break;
    }
    if (c < 0x20 || c > 0x7e) {
      throw new FrameError('BAD_COMMAND', `command field has non-printable byte 0x${c.toString(16).padStart(2, '0')} at ${i - offset}`);
    }
  }
  return buf.toString('latin1', offset, end);
}

/** True when the 12-byte command field at `buf[offset..]` is one bitcoind accepts (see readCommand). */
export function commandValid(buf: Uint8Array, offset: number): boolean {
  let i = offset;
  const end = offset + COMMAND_SIZE;
  for (; i < end && buf[i] !== 0; i++) if (buf[i]! < 0x20 || buf[i]! > 0x7e) return false;
  for (; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

const INTERN_SLOTS = 256; // a power of two
const internKeys = new Uint32Array(INTERN_SLOTS * 3);
const internValues: (string | undefined)[] = new Array<string | undefined>(INTERN_SLOTS).fill(undefined);

/**
 * The command at `buf[offset..offset+12]`, or null when bitcoind would reject the field. Commands
 * seen before come from a small table keyed by the field's three 32-bit words, so the hot path
 * creates no string per frame; a new command (or a collision) costs one string.
 */
export function internCommand(buf: Buffer, offset: number): string | null {
  const w0 = buf.readUInt32LE(offset);
  const w1 = buf.readUInt32LE(offset + 4);
  const w2 = buf.readUInt32LE(offset + 8);
  const slot = (Math.imul(w0 ^ Math.imul(w1, 0x9e3779b1) ^ Math.imul(w2, 0x85ebca6b), 0x27d4eb2d) >>> 24) & (INTERN_SLOTS - 1);
  const k = slot * 3;
  const hit = internValues[slot];
  if (hit !== undefined && internKeys[k] === w0 && internKeys[k + 1] === w1 && internKeys[k + 2] === w2) return hit;
  if (!commandValid(buf, offset)) return null;
  let end = offset;
  while (end < offset + COMMAND_SIZE && buf[end] !== 0) end++;
  const command = buf.toString('latin1', offset, end);
  internKeys[k] = w0;
  internKeys[k + 1] = w1;
  internKeys[k + 2] = w2;
  internValues[slot] = command;
  return command;
}

/** Does the 12-byte field of `command` (NUL-padded) start with `buf[offset..offset+n)`? */
export function commandFieldStartsWith(command: string, buf: Uint8Array, offset: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (buf[offset + i] !== (i < command.length ? command.charCodeAt(i) : 0)) return false;
  return true;
}

/** Write a command into a 12-byte NUL-padded field, rejecting what bitcoind would reject. */
export function writeCommand(command: string, buf: Buffer, offset: number): void {
  if (command.length > COMMAND_SIZE) {
    throw new FrameError('BAD_COMMAND', `command "${command}" is longer than ${COMMAND_SIZE} bytes`, command);
  }
  for (let i = 0; i < command.length; i++) {
    const c = command.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) throw new FrameError('BAD_COMMAND', `command "${command}" has a non-printable character`, command);
    buf[offset + i] = c;
  }
  buf.fill(0, offset + command.length, offset + COMMAND_SIZE);
}

/** True when the 4 bytes at `buf[offset..]` are `magic`. */
export function magicMatches(buf: Uint8Array, offset: number, magic: Uint8Array): boolean {
  return buf[offset] === magic[0] && buf[offset + 1] === magic[1] && buf[offset + 2] === magic[2] && buf[offset + 3] === magic[3];
}
