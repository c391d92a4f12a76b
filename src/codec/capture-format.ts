import { FrameError } from './errors.js';
import { COMMAND_SIZE, readCommand, writeCommand } from './header.js';

/**
 * bitcoind's -capturemessages record format (msgs_recv.dat / msgs_sent.dat): per message,
 * time in microseconds since the epoch (uint64 LE), the 12-byte NUL-padded command, the
 * payload length (uint32 LE) and the payload. No magic, no checksum.
 */
export interface CaptureRecord {
  timeMicros: bigint;
  command: string;
  payload: Buffer;
}

export const CAPTURE_RECORD_HEADER_SIZE = 8 + COMMAND_SIZE + 4;

/**
 * Every record of a capture file, in order. Payloads are views into `buf`. The command field
 * is checked as bitcoind checks it on the wire (FrameError BAD_COMMAND); a file that ends
 * inside a record is FrameError TRUNCATED.
 */
export function readCaptureFile(buf: Buffer): CaptureRecord[] {
  const records: CaptureRecord[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < CAPTURE_RECORD_HEADER_SIZE) {
      throw new FrameError('TRUNCATED', `capture file ends inside a record header at byte ${pos}`);
    }
    const timeMicros = buf.readBigUInt64LE(pos);
    const command = readCommand(buf, pos + 8);
    const len = buf.readUInt32LE(pos + 8 + COMMAND_SIZE);
    const start = pos + CAPTURE_RECORD_HEADER_SIZE;
    if (buf.length - start < len) {
      throw new FrameError('TRUNCATED', `capture record "${command}" at byte ${pos} declares ${len} payload bytes, ${buf.length - start} left`, command);
    }
    records.push({ timeMicros, command, payload: buf.subarray(start, start + len) });
    pos = start + len;
  }
  return records;
}

/** One record in the capture format. */
export function encodeCaptureRecord(record: CaptureRecord): Buffer {
  const out = Buffer.allocUnsafe(CAPTURE_RECORD_HEADER_SIZE + record.payload.length);
  out.writeBigUInt64LE(record.timeMicros, 0);
  writeCommand(record.command, out, 8);
  out.writeUInt32LE(record.payload.length, 8 + COMMAND_SIZE);
  out.set(record.payload, CAPTURE_RECORD_HEADER_SIZE);
  return out;
}

/** A whole capture file: readCaptureFile(encodeCaptureFile(records)) gives the records back. */
export function encodeCaptureFile(records: Iterable<CaptureRecord>): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) parts.push(encodeCaptureRecord(r));
  return Buffer.concat(parts);
}

/** Microseconds since the epoch, as bitcoind stamps records. */
export function captureTimeNow(): bigint {
  return BigInt(Date.now()) * 1000n;
}
