import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CaptureRecord, readCaptureFile } from '../../src/codec/capture-format.js';

/** The repo's test/fixtures/bitcoind-capture, from dist/test/codec/ (compiled) or test/codec/ (source). */
export const CAPTURE_DIR = fileURLToPath(new URL('../../../test/fixtures/bitcoind-capture/', import.meta.url));

export interface CaptureFile {
  /** e.g. p2p_segwit-1/msgs_recv.dat */
  name: string;
  bytes: Buffer;
  records: CaptureRecord[];
}

export function captureFiles(): CaptureFile[] {
  const out: CaptureFile[] = [];
  for (const dir of readdirSync(CAPTURE_DIR).sort()) {
    const path = join(CAPTURE_DIR, dir);
    if (!statSync(path).isDirectory()) continue;
    for (const file of readdirSync(path).sort()) {
      if (!file.endsWith('.dat')) continue;
      const bytes = readFileSync(join(path, file));
      out.push({ name: `${dir}/${file}`, bytes, records: readCaptureFile(bytes) });
    }
  }
  return out;
}
