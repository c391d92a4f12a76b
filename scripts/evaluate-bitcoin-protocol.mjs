#!/usr/bin/env node
/**
 * Evidence for issue 2's "Why not the named bitcoin-protocol package": installs
 * bitcoin-protocol@4.1.3 into a temporary folder (never into this project), feeds it real
 * frames built from test/fixtures/bitcoind-capture, and checks each claim. Prints a table of
 * findings; `--json` prints them as JSON too. See docs/bitcoin-protocol-evaluation.md.
 *
 * Usage: node scripts/evaluate-bitcoin-protocol.mjs [--json] [--runs N]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSION = '4.1.3';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CAPTURE = path.join(ROOT, 'test/fixtures/bitcoind-capture');
const REGTEST_MAGIC = Buffer.from('fabfb5da', 'hex');
/** bitcoin-protocol compares magic as a UInt32LE number */
const REGTEST_MAGIC_U32 = REGTEST_MAGIC.readUInt32LE(0);
const args = process.argv.slice(2);
const RUNS = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 7;

// ---------------------------------------------------------------------------- install

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bitcoin-protocol-eval-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', tmp, `bitcoin-protocol@${VERSION}`], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
const requireTmp = createRequire(path.join(tmp, 'node_modules', '.eval.js'));
const bp = requireTmp('bitcoin-protocol');
const pkgVersion = (name) => JSON.parse(fs.readFileSync(path.join(tmp, 'node_modules', name, 'package.json'), 'utf8')).version;
// bitcoinjs-lib is this project's own dependency: used only to parse a witness tx independently
const bitcoin = createRequire(path.join(ROOT, 'package.json'))('bitcoinjs-lib');

// ---------------------------------------------------------------------------- frames

const sha256 = (d) => crypto.hash('sha256', d, 'buffer');
const checksum = (payload) => sha256(sha256(payload)).subarray(0, 4);

function frame(command, payload = Buffer.alloc(0), length = payload.length) {
  const h = Buffer.alloc(24);
  REGTEST_MAGIC.copy(h, 0);
  h.write(command, 4, 'latin1');
  h.writeUInt32LE(length, 16);
  checksum(payload).copy(h, 20);
  return Buffer.concat([h, payload]);
}

/** All records of the capture files: { file, command, payload }. Format: the fixture README. */
function readCapture() {
  const out = [];
  for (const dir of fs.readdirSync(CAPTURE).sort()) {
    for (const name of ['msgs_sent.dat', 'msgs_recv.dat']) {
      const file = path.join(CAPTURE, dir, name);
      if (!fs.existsSync(file)) continue;
      const b = fs.readFileSync(file);
      for (let p = 0; p + 24 <= b.length; ) {
        const command = b.toString('latin1', p + 8, p + 20).replace(/\0+$/, '');
        const len = b.readUInt32LE(p + 20);
        out.push({ file: `${dir}/${name}`, command, payload: b.subarray(p + 24, p + 24 + len) });
        p += 24 + len;
      }
    }
  }
  return out;
}
const records = readCapture();
function record(command, pred = () => true) {
  const r = records.find((x) => x.command === command && pred(x.payload));
  if (!r) throw new Error(`no "${command}" record in the capture`);
  return r;
}
const isWitnessTx = (p) => p[4] === 0 && p[5] === 1;

/**
 * Feeds `chunks` to a fresh bitcoin-protocol decode stream. Returns the decoded messages, the
 * error the stream emitted ('error' event) and any exception thrown synchronously by write().
 */
async function bpDecode(chunks, opts = { magic: REGTEST_MAGIC_U32 }) {
  const stream = bp.createDecodeStream(opts);
  const messages = [];
  let error = null;
  let thrown = null;
  stream.on('data', (m) => messages.push(m));
  stream.on('error', (e) => (error ??= e));
  for (const c of chunks) {
    try {
      stream.write(c);
    } catch (e) {
      thrown = e;
      break;
    }
  }
  await new Promise((r) => setImmediate(r));
  return { messages, error, thrown };
}
const describe = (r) =>
  r.thrown ? `throws synchronously from write(): ${r.thrown.constructor.name}: ${r.thrown.message}` : r.error ? `error event: ${r.error.message}` : `decoded ${r.messages.length} message(s), no error`;

const findings = [];
function finding(claim, confirmed, evidence) {
  findings.push({ claim, confirmed, evidence });
}

// ---------------------------------------------------------------------------- 1. witness transactions

{
  const wtx = record('tx', isWitnessTx);
  const plain = record('tx', (p) => !isWitnessTx(p));
  const wblock = record('block', (p) => {
    const tx0 = 80 + 1; // header + 1-byte tx count (small blocks)
    return p[80] < 0xfd && p[tx0 + 4] === 0 && p[tx0 + 5] === 1;
  });
  const rw = await bpDecode([frame('tx', wtx.payload)]);
  const rp = await bpDecode([frame('tx', plain.payload)]);
  const rb = await bpDecode([frame('block', wblock.payload)]);
  finding(
    'cannot decode witness transactions',
    !!(rw.error || rw.thrown) && !!(rb.error || rb.thrown) && rp.messages.length === 1,
    `witness tx (${wtx.payload.length} B, ${wtx.file}): ${describe(rw)} | witness block (${wblock.payload.length} B): ${describe(rb)} | control, non-witness tx (${plain.payload.length} B): ${describe(rp)}`,
  );
}

// ---------------------------------------------------------------------------- 2. handshake messages

{
  const per = [];
  let all = true;
  for (const cmd of ['wtxidrelay', 'sendaddrv2', 'sendcmpct', 'feefilter']) {
    const r = await bpDecode([frame(cmd, record(cmd).payload)]);
    all &&= !!r.error && /Unrecognized command/.test(r.error.message);
    per.push(`${cmd}: ${describe(r)}`);
  }
  // bitcoind's own handshake, in the order it sent it on one connection
  const sent = records.filter((x) => x.file === 'p2p_feefilter-1/msgs_sent.dat').slice(0, 8);
  const hs = await bpDecode([Buffer.concat(sent.map((x) => frame(x.command, x.payload)))]);
  finding(
    'stops with "Unrecognized command" on wtxidrelay, sendaddrv2, sendcmpct, feefilter',
    all && hs.messages.length < sent.length,
    `${per.join(' | ')} | bitcoind's handshake [${sent.map((x) => x.command).join(', ')}] fed at once: ${hs.messages.length} decoded (${hs.messages.map((m) => m.command).join(', ')}), then ${describe(hs)}`,
  );
}

// ---------------------------------------------------------------------------- 3. no maximum frame length

{
  const stream = bp.createDecodeStream({ magic: REGTEST_MAGIC_U32 });
  let error = null;
  let messages = 0;
  stream.on('data', () => messages++);
  stream.on('error', (e) => (error = e));
  globalThis.gc?.();
  const before = process.memoryUsage().arrayBuffers;
  const header = frame('block', Buffer.alloc(0), 0xffffffff);
  stream.write(header);
  const MB = 64;
  for (let i = 0; i < MB; i++) stream.write(crypto.randomBytes(1 << 20));
  await new Promise((r) => setImmediate(r));
  globalThis.gc?.();
  const grown = (process.memoryUsage().arrayBuffers - before) / (1 << 20);
  finding(
    'has no maximum frame length (a header declaring 0xffffffff bytes is accepted and buffered)',
    error === null && messages === 0 && grown > MB * 0.9,
    `header declaring 4294967295 payload bytes, then ${MB} MiB of payload: ${error ? `error: ${error.message}` : 'no error'}, ${messages} messages, ArrayBuffer memory grew by ${grown.toFixed(1)} MiB and stays held waiting for the other ~4 GB (bitcoind and this project's FrameDecoder refuse the header: above 4,000,000)`,
  );
}

// ---------------------------------------------------------------------------- 4. no raw bytes

{
  const raw = frame('inv', record('inv').payload);
  const r = await bpDecode([raw]);
  const m = r.messages[0];
  const buffers = Object.entries(m).filter(([, v]) => Buffer.isBuffer(v));
  const holdsRaw = buffers.some(([, v]) => v.equals(raw) || v.equals(raw.subarray(24)));
  finding(
    'keeps no raw bytes',
    !holdsRaw,
    `a decoded inv message has keys {${Object.keys(m).join(', ')}}; Buffer fields: ${buffers.map(([k, v]) => `${k} (${v.length} B)`).join(', ')}; neither the frame nor its payload bytes are kept, so forwarding means re-encoding`,
  );
}

// ---------------------------------------------------------------------------- 5. property-named commands

{
  const per = [];
  let ctorThrows = false;
  for (const cmd of ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnPrope', 'length', 'name', 'apply', 'call', 'bind']) {
    const r = await bpDecode([frame(cmd, Buffer.from('00', 'hex'))]);
    if (cmd === 'constructor' && r.thrown) ctorThrows = true;
    per.push(`${cmd}: ${describe(r)}`);
  }
  // the same frame arriving on a real socket piped into the decoder, with an 'error' handler:
  const child = spawnSync(
    process.execPath,
    [
      '-e',
      `const net = require('net'); const bp = require(${JSON.stringify(path.join(tmp, 'node_modules', 'bitcoin-protocol'))});
       const frame = Buffer.from(${JSON.stringify(frame('constructor', Buffer.from('00', 'hex')).toString('hex'))}, 'hex');
       const server = net.createServer((sock) => { const d = bp.createDecodeStream({ magic: ${REGTEST_MAGIC_U32} });
         d.on('error', (e) => { console.log('handled: ' + e.message); process.exit(0); }); sock.on('error', () => {}); sock.pipe(d); d.resume(); });
       server.listen(0, '127.0.0.1', () => { const c = net.connect(server.address().port, '127.0.0.1', () => c.write(frame)); });
       setTimeout(() => { console.log('survived'); process.exit(0); }, 2000);`,
    ],
    { encoding: 'utf8', timeout: 10_000 },
  );
  const crashLine = (child.stderr.match(/^\w*Error: .*$/m) ?? [''])[0];
  finding(
    'a frame whose command is `constructor` throws synchronously from its stream (a remote crash)',
    ctorThrows && child.status !== 0,
    `${per.join(' | ')} | on a TCP socket piped into the stream with an 'error' handler: the process exits with status ${child.status} (${crashLine || child.stdout.trim()})`,
  );
}

// ---------------------------------------------------------------------------- 6. throughput

/** The plain header splitter: reads the length at offset 16 and slices, chunk by chunk. */
class Splitter {
  header = Buffer.alloc(24);
  headerFill = 0;
  partial = null;
  partialFill = 0;
  constructor(onFrame, verify) {
    this.onFrame = verify ? (raw) => checksum(raw.subarray(24)).equals(raw.subarray(20, 24)) && onFrame(raw) : onFrame;
  }
  push(chunk) {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.partial) {
        const take = Math.min(this.partial.length - this.partialFill, chunk.length - pos);
        chunk.copy(this.partial, this.partialFill, pos, pos + take);
        this.partialFill += take;
        pos += take;
        if (this.partialFill < this.partial.length) return;
        const raw = this.partial;
        this.partial = null;
        this.onFrame(raw);
      } else if (this.headerFill > 0 || chunk.length - pos < 24) {
        const take = Math.min(24 - this.headerFill, chunk.length - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < 24) return;
        this.headerFill = 0;
        this.partial = Buffer.allocUnsafe(24 + this.header.readUInt32LE(16));
        this.header.copy(this.partial, 0);
        this.partialFill = 24;
        if (this.partial.length === 24) {
          const raw = this.partial;
          this.partial = null;
          this.onFrame(raw);
        }
      } else {
        const end = pos + 24 + chunk.readUInt32LE(pos + 16);
        if (end <= chunk.length) {
          this.onFrame(chunk.subarray(pos, end));
          pos = end;
        } else {
          this.partial = Buffer.allocUnsafe(end - pos);
          chunk.copy(this.partial, 0, pos);
          this.partialFill = chunk.length - pos;
          return;
        }
      }
    }
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** median seconds per candidate, runs interleaved after one warm-up round */
async function timeInterleaved(candidates, runs) {
  for (const c of candidates) await c.fn();
  const times = candidates.map(() => []);
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < candidates.length; i++) {
      const t0 = process.hrtime.bigint();
      await candidates[i].fn();
      times[i].push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  return times.map(median);
}

const INV_FRAMES = 20_000;
const invFrames = [];
for (let i = 0; i < INV_FRAMES; i++) {
  const p = Buffer.alloc(37);
  p[0] = 1;
  p.writeUInt32LE(0x40000001, 1);
  crypto.randomBytes(32).copy(p, 5);
  invFrames.push(frame('inv', p));
}
const invStream = Buffer.concat(invFrames);
if (invFrames[0].length !== 61) throw new Error('inv frame is not 61 bytes');
const invChunks = [];
for (let i = 0; i < invStream.length; i += 65536) invChunks.push(invStream.subarray(i, i + 65536));

async function bpPass() {
  const s = bp.createDecodeStream({ magic: REGTEST_MAGIC_U32 });
  let n = 0;
  s.on('data', () => n++);
  const done = new Promise((resolve, reject) => {
    s.on('end', resolve);
    s.on('error', reject);
  });
  for (const c of invChunks) s.write(c);
  s.end();
  await done;
  if (n !== INV_FRAMES) throw new Error(`bitcoin-protocol decoded ${n} of ${INV_FRAMES}`);
}
function splitPass(verify) {
  let n = 0;
  const sp = new Splitter(() => n++, verify);
  for (const c of invChunks) sp.push(c);
  if (n !== INV_FRAMES) throw new Error(`splitter saw ${n} of ${INV_FRAMES}`);
}

const [tBp, tSplit, tSplitSum] = await timeInterleaved(
  [{ fn: bpPass }, { fn: () => splitPass(false) }, { fn: () => splitPass(true) }],
  RUNS,
);
const mbps = (t) => invStream.length / t / 1e6;
const speed = {
  bitcoinProtocol: { mbPerSec: mbps(tBp), framesPerSec: INV_FRAMES / tBp },
  splitter: { mbPerSec: mbps(tSplit), framesPerSec: INV_FRAMES / tSplit },
  splitterWithChecksum: { mbPerSec: mbps(tSplitSum), framesPerSec: INV_FRAMES / tSplitSum },
};
finding(
  'decode throughput on 61-byte inv frames is far below a plain header splitter',
  tBp > tSplit * 5,
  `${INV_FRAMES} inv frames (${(invStream.length / 1e6).toFixed(2)} MB) in 64 KiB chunks, median of ${RUNS}: bitcoin-protocol ${speed.bitcoinProtocol.mbPerSec.toFixed(1)} MB/s (${Math.round(speed.bitcoinProtocol.framesPerSec)} frames/s); plain splitter ${speed.splitter.mbPerSec.toFixed(1)} MB/s (${(tBp / tSplit).toFixed(0)}x faster); splitter + sha256d checksum ${speed.splitterWithChecksum.mbPerSec.toFixed(1)} MB/s`,
);

// ---------------------------------------------------------------------------- 7. could part of it be used? encoders

{
  const messages = bp.messages.defaultMessages;
  const perCommand = new Map();
  for (const r of records) {
    const codec = Object.prototype.hasOwnProperty.call(messages, r.command) ? messages[r.command] : null;
    const s = perCommand.get(r.command) ?? { exact: 0, differs: 0, failed: 0, unsupported: 0, example: '' };
    perCommand.set(r.command, s);
    if (!codec) {
      s.unsupported++;
      continue;
    }
    try {
      const value = codec.decode(r.payload);
      if (codec.decode.bytes !== r.payload.length) throw new Error(`decode read ${codec.decode.bytes} of ${r.payload.length} bytes`);
      const again = Buffer.from(codec.encode(value)).subarray(0, codec.encode.bytes);
      if (again.equals(r.payload)) s.exact++;
      else {
        s.differs++;
        s.example ||= `${again.length} B vs ${r.payload.length} B`;
      }
    } catch (e) {
      s.failed++;
      s.example ||= e.message;
    }
  }
  const rows = [...perCommand.entries()].sort(([a], [b]) => a.localeCompare(b));
  const summary = rows.map(([cmd, s]) => `${cmd}: ${s.unsupported ? `unsupported x${s.unsupported}` : `exact ${s.exact}, differs ${s.differs}, failed ${s.failed}${s.example ? ` (${s.example})` : ''}`}`);

  // the tx encoder with witnesses, from a value built by bitcoinjs-lib (bitcoin-protocol cannot decode it)
  const wtxRecords = records.filter((r) => r.command === 'tx' && isWitnessTx(r.payload));
  let wExact = 0;
  let wOther = 0;
  for (const r of wtxRecords) {
    try {
      const t = bitcoin.Transaction.fromBuffer(r.payload);
      const value = {
        version: t.version,
        ins: t.ins.map((i) => ({ hash: i.hash, index: i.index, script: i.script, sequence: i.sequence, witness: i.witness })),
        outs: t.outs.map((o) => ({ value: Number(o.value), script: o.script })),
        locktime: t.locktime,
      };
      if (Buffer.from(bp.types.transaction.encode(value)).equals(r.payload)) wExact++;
      else wOther++;
    } catch {
      wOther++;
    }
  }

  // getheaders: the protocol version field is declared UInt32BE
  const gh = record('getheaders');
  const ghv = messages.getheaders.decode(gh.payload).version;

  // version without the optional relay byte (BIP37: peers may omit it)
  const ver = record('version').payload;
  let noRelay;
  try {
    messages.version.decode(ver.subarray(0, ver.length - 1));
    noRelay = 'decodes';
  } catch (e) {
    noRelay = `${e.constructor.name}: ${e.message}`;
  }

  // encode speed (payload only) against writing the same 37 bytes by hand
  const invValue = [{ type: 0x40000001, hash: crypto.randomBytes(32) }];
  const N = 100_000;
  const [tEnc, tHand] = await timeInterleaved(
    [
      { fn: () => { for (let i = 0; i < N; i++) messages.inv.encode(invValue); } },
      {
        fn: () => {
          for (let i = 0; i < N; i++) {
            const b = Buffer.allocUnsafe(37);
            b[0] = 1;
            b.writeUInt32LE(invValue[0].type, 1);
            invValue[0].hash.copy(b, 5);
          }
        },
      },
    ],
    RUNS,
  );
  speed.invEncode = { bitcoinProtocolPerSec: N / tEnc, byHandPerSec: N / tHand };
  const exactCommands = rows.filter(([, s]) => s.exact > 0 && !s.differs && !s.failed && !s.unsupported).map(([c]) => c);
  finding(
    'its payload encoders (messages.<cmd>.encode, types.transaction.encode) re-encode real payloads byte-exact',
    exactCommands.length > 0,
    `decode+encode round trip of every capture payload (${records.length} records): ${summary.join('; ')} | types.transaction.encode of ${wtxRecords.length} witness txs parsed by bitcoinjs-lib: ${wExact} exact, ${wOther} not | getheaders version field decodes as ${ghv} (0x${ghv.toString(16)}; read as UInt32BE, the wire value is ${gh.payload.readUInt32LE(0)}) | version without the relay byte (${ver.length - 1} B): ${noRelay} | inv encode ${Math.round(N / tEnc)}/s vs by hand ${Math.round(N / tHand)}/s`,
  );
}

// ---------------------------------------------------------------------------- report

const versions = { node: process.version, 'bitcoin-protocol': pkgVersion('bitcoin-protocol'), varstruct: pkgVersion('varstruct'), bl: pkgVersion('bl'), 'through2': pkgVersion('through2'), 'readable-stream': pkgVersion('readable-stream') };
console.log(`bitcoin-protocol evaluation (${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')})\n`);
const w = Math.max(...findings.map((f) => f.claim.length));
console.log(`${'claim'.padEnd(w)}  confirmed`);
console.log(`${'-'.repeat(w)}  ---------`);
for (const f of findings) console.log(`${f.claim.padEnd(w)}  ${f.confirmed ? 'yes' : 'NO'}`);
console.log('\nevidence:');
for (const [i, f] of findings.entries()) console.log(`\n${i + 1}. ${f.claim}\n   ${f.evidence.split(' | ').join('\n   ')}`);
if (args.includes('--json')) console.log(`\n${JSON.stringify({ versions, findings, speed }, null, 2)}`);
