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

/** A small deterministic PRNG (mulberry32) for chunk sizes and generated inputs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}
