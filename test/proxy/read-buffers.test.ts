/**
 * LendingReadBuffer over real TCP sockets (Node's `onread`): quiet sockets share one
 * process-wide buffer and still each get exactly their own bytes; a socket that reads in bulk
 * gets a buffer of its own, whose lent bytes the next reads never overwrite; a bulk socket
 * that goes quiet gives its buffer back. Sockets only: this is the read path below any
 * Bitcoin framing (startup-footprint.test.ts runs it under real nodes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { LendingReadBuffer } from '../../src/proxy/transport/lending-read-buffer.js';
import { filePrng } from '../support/seed.js';
import { waitFor } from '../support/wait.js';

const rand = filePrng(import.meta.url);

interface Reader {
  socket: net.Socket;
  reads: LendingReadBuffer;
  /** every chunk as handed out, not copied */
  chunks: Buffer[];
  received: () => number;
}

/** A client socket that reads through its own LendingReadBuffer, lending after every read when asked. */
function connectReader(port: number, lendEveryRead: boolean): Promise<Reader> {
  const reads = new LendingReadBuffer();
  const chunks: Buffer[] = [];
  let received = 0;
  const socket = net.connect({
    port,
    host: '127.0.0.1',
    onread: {
      buffer: reads.next,
      callback: (n, buf) => {
        const chunk = reads.read(n, buf);
        chunks.push(chunk);
        received += n;
        if (lendEveryRead) reads.lend(); // we keep the view, as a hook or a queued write would
        return true;
      },
    },
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve({ socket, reads, chunks, received: () => received }));
    socket.once('error', reject);
  });
}

async function serverOf(onSocket: (s: net.Socket) => void): Promise<{ port: number; close: () => void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const written = (s: net.Socket, b: Buffer) => new Promise<void>((r, j) => s.write(b, (err) => (err ? j(err) : r())));

test('quiet sockets share one read buffer and each keeps exactly its own bytes', { timeout: 60_000 }, async (t) => {
  const accepted: net.Socket[] = [];
  const srv = await serverOf((s) => accepted.push(s));
  t.after(srv.close);
  const readers = await Promise.all(Array.from({ length: 40 }, () => connectReader(srv.port, false)));
  t.after(() => readers.forEach((r) => r.socket.destroy()));
  await waitFor(() => accepted.length === readers.length, 10_000, 'all accepted');
  // accepted[i] pairs with some reader: tag every message with its sender's index to match them up
  const sent = accepted.map(() => [] as Buffer[]);
  let total = 0;
  const receivedAll = () => readers.reduce((a, r) => a + r.received(), 0);
  for (let round = 0; round < 20; round++) {
    // each round is read before the next is written: reads stay small, as an idle peer's are
    await Promise.all(
      accepted.map((s, i) => {
        const body = Buffer.alloc(8 + Math.floor(rand() * 600));
        for (let k = 0; k < body.length; k++) body[k] = Math.floor(rand() * 256);
        body.writeUInt32LE(i, 0);
        sent[i]!.push(body);
        total += body.length;
        return written(s, body);
      }),
    );
    await waitFor(() => receivedAll() === total, 20_000, `round ${round} received`);
  }
  const expected = new Map(sent.map((l, i) => [i, Buffer.concat(l)]));
  for (const r of readers) {
    assert.equal(r.reads.bulk, false, 'small reads stay on the shared buffer');
    const got = Buffer.concat(r.chunks);
    const from = got.readUInt32LE(0);
    assert.ok(got.equals(expected.get(from)!), `reader fed by socket ${from} got exactly its bytes, uncorrupted by the others`);
    expected.delete(from);
  }
  assert.equal(expected.size, 0, 'every sender matched one reader');
});

test('a bulk reader gets a buffer of its own; lent bytes survive later reads; quiet again, it gives the buffer back', { timeout: 60_000 }, async (t) => {
  let peer: net.Socket | null = null;
  const srv = await serverOf((s) => (peer ??= s));
  t.after(srv.close);
  const bulk = await connectReader(srv.port, true);
  await waitFor(() => peer !== null, 10_000, 'accepted');
  // neighbours on the shared buffer: their (empty) reads must not disturb the bulk reader's
  const quiet = await Promise.all(Array.from({ length: 5 }, () => connectReader(srv.port, false)));
  t.after(() => [bulk, ...quiet].forEach((r) => r.socket.destroy()));
  const big = Buffer.alloc(4 * 1024 * 1024);
  for (let k = 0; k < big.length; k += 4) big.writeUInt32LE(Math.floor(rand() * 2 ** 32), k);
  await written(peer!, big);
  await waitFor(() => bulk.received() === big.length, 30_000, 'the 4 MB arrived');
  assert.equal(bulk.reads.bulk, true, 'large reads moved the socket to a buffer of its own');
  assert.ok(bulk.chunks.length > 1, 'it arrived in several reads');
  // the views were kept without copying; each read was lent, so none was overwritten
  assert.equal(createHash('sha256').update(Buffer.concat(bulk.chunks)).digest('hex'), createHash('sha256').update(big).digest('hex'));

  for (let i = 0; i < 40 && bulk.reads.bulk; i++) {
    const before = bulk.received();
    await written(peer!, Buffer.from(`small ${i}`));
    await waitFor(() => bulk.received() > before, 10_000, 'small write arrived');
  }
  assert.equal(bulk.reads.bulk, false, 'after a run of small reads the socket reads into the shared buffer again');
});

test('a record split across reads is carried over: the next read lands after its first bytes, in one piece with what follows', { timeout: 60_000 }, async (t) => {
  let peer: net.Socket | null = null;
  const srv = await serverOf((s) => (peer ??= s));
  t.after(srv.close);
  // records: a uint32 length, then that many bytes; mostly small, some over the carry limit (16 KB)
  const records: Buffer[] = [];
  for (let i = 0; i < 3000; i++) {
    const size = rand() < 0.03 ? 20_000 + Math.floor(rand() * 20_000) : 1 + Math.floor(rand() * 3000);
    const r = Buffer.alloc(4 + size);
    r.writeUInt32LE(size, 0);
    for (let k = 4; k < r.length; k++) r[k] = Math.floor(rand() * 256);
    records.push(r);
  }
  const stream = Buffer.concat(records);

  const reads = new LendingReadBuffer();
  const got: Buffer[] = [];
  let fresh = 0;
  let carried = 0;
  /** bytes the last carry() accepted: the next chunk starts with them */
  let pending = 0;
  let refusedLarge = 0;
  /** bytes a refused carry left for us to keep (a copy), as the decoder's own assembly would */
  let held: Buffer | null = null;
  const parse = (chunk: Buffer): void => {
    let pos = 0;
    // first finish a record we are assembling ourselves
    while (held) {
      const need = held.length < 4 ? 4 : 4 + held.readUInt32LE(0);
      const take = Math.min(need - held.length, chunk.length - pos);
      held = Buffer.concat([held, chunk.subarray(pos, pos + take)]);
      pos += take;
      if (held.length < need) return;
      if (need > 4 || held.readUInt32LE(0) === 0) {
        got.push(held);
        held = null;
      }
    }
    // keep views when this read is lent, copies otherwise (the buffer is reused)
    const lend = rand() < 0.3;
    while (pos < chunk.length) {
      const size = chunk.length - pos >= 4 ? 4 + chunk.readUInt32LE(pos) : 4;
      if (chunk.length - pos < size) {
        if (reads.carry(chunk, chunk.length - pos, size)) {
          carried++;
          pending = chunk.length - pos;
        }
        else {
          if (size > 16 * 1024) refusedLarge++;
          held = Buffer.from(chunk.subarray(pos));
        }
        break;
      }
      got.push(lend ? chunk.subarray(pos, pos + size) : Buffer.from(chunk.subarray(pos, pos + size)));
      pos += size;
    }
    if (lend) reads.lend();
  };
  const socket = net.connect({
    port: srv.port,
    host: '127.0.0.1',
    onread: {
      buffer: reads.next,
      callback: (n, buf) => {
        const chunk = reads.read(n, buf);
        assert.equal(chunk.length, pending + n, 'a chunk is the carried bytes, then the read');
        pending = 0;
        fresh += n;
        parse(chunk);
        return true;
      },
    },
  });
  t.after(() => socket.destroy());
  await new Promise((r) => socket.once('connect', r));
  await waitFor(() => peer !== null, 10_000, 'accepted');
  // in uneven writes, so records straddle reads everywhere
  for (let off = 0; off < stream.length; ) {
    const n = Math.min(stream.length - off, 1 + Math.floor(rand() * 200_000));
    await written(peer!, stream.subarray(off, off + n));
    off += n;
  }
  await waitFor(() => fresh === stream.length, 30_000, 'everything arrived');
  assert.equal(held, null, 'nothing left over');
  assert.equal(got.length, records.length, 'every record, once');
  assert.equal(createHash('sha256').update(Buffer.concat(got)).digest('hex'), createHash('sha256').update(stream).digest('hex'), 'carried and lent bytes were never overwritten');
  assert.ok(carried > 0, 'small records split across reads were carried over');
  assert.ok(refusedLarge > 0, 'records over the carry limit were left to the reader to assemble');
});
