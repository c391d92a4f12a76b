import { FrameError } from './errors.js';

/** magic(4) + command(12) + length(4) + checksum(4) */
export const HEADER_SIZE = 24;
export const COMMAND_SIZE = 12;
/** bitcoind's MAX_PROTOCOL_MESSAGE_LENGTH (net.h). */
export const MAX_PROTOCOL_MESSAGE_LENGTH = 4_000_000;

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
