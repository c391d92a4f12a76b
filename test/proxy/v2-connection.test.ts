/**
 * The v2 connection's packet layer both ways over a loopback TCP connection: BIP324's short
 * ids for the 28 commands of its table, the long form for the rest and for x: commands, decoys
 * ignored, unknown short ids dropped (as Core drops them), and rekeying across 1,000 packets.
 * Both ends are the proxy's V2Connection (initiator and responder), whose ciphers and key
 * exchange are checked against every row of the BIP's vectors in v2-vectors.test.ts; here the
 * question is the framing around them, so the byte counts are checked against BIP324's packet
 * layout (3 length + 1 header + contents + 16 tag).
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { NETWORKS, encodeFrame, type Frame } from '../../src/codec/index.js';
import { V2Connection, wholeFrames, type V2FailReason } from '../../src/proxy/transport/v2/connection.js';
import { V2_SHORT_IDS } from '../../src/proxy/transport/v2/message-ids.js';
import { filePrng, randomBytes, seedNote } from '../support/seed.js';
import { waitFor } from '../support/wait.js';

const regtest = NETWORKS.regtest;
const rand = filePrng(import.meta.url);

interface End {
  conn: V2Connection;
  socket: net.Socket;
  frames: Frame[];
  dropped: string[];
  failed: V2FailReason[];
  bytesIn: number;
}

function end(role: 'initiator' | 'responder', socket: net.Socket): End {
  const e: End = { socket, frames: [], dropped: [], failed: [], bytesIn: 0, conn: null as unknown as V2Connection };
  e.conn = new V2Connection({
    role,
    network: regtest,
    socket,
    maxMessageSize: 4_000_000,
    garbage: randomBytes(rand, Math.floor(rand() * 4096)),
    events: { ready: () => {}, failed: (r) => void e.failed.push(r), dropped: (d) => void e.dropped.push(d) },
  });
  const reader = e.conn.reader(wholeFrames((f) => void e.frames.push(f)));
  socket.on('data', (c: Buffer) => {
    e.bytesIn += c.length;
    reader.push(c);
  });
  return e;
}

async function pair(): Promise<{ a: End; b: End; close: () => void }> {
  let accepted!: (s: net.Socket) => void;
  const got = new Promise<net.Socket>((r) => (accepted = r));
  const server = net.createServer((s) => accepted(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
  const serverSide = await got;
  const a = end('initiator', client);
  const b = end('responder', serverSide);
  a.conn.start();
  b.conn.start();
  await waitFor(() => a.conn.ready && b.conn.ready, 10_000, 'both handshakes');
  return {
    a,
    b,
    close: () => {
      client.destroy();
      serverSide.destroy();
      server.close();
    },
  };
}

test(`every short id, long form and x: commands, both ways, byte for byte (${seedNote(import.meta.url)})`, async () => {
  const { a, b, close } = await pair();
  try {
    const commands = [...V2_SHORT_IDS.slice(1), 'version', 'verack', 'sendheaders', 'wtxidrelay', 'sendaddrv2', 'x:hello', 'x:buy'];
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      const sent = commands.map((c) => encodeFrame(regtest, c, randomBytes(rand, Math.floor(rand() * 300))));
      const before = to.bytesIn;
      const w = from.conn.writer(from.socket);
      for (const f of sent) w.frame(f.raw);
      await waitFor(() => to.frames.length === sent.length, 10_000, 'all frames');
      for (const [i, f] of sent.entries()) {
        assert.equal(to.frames[i]!.command, f.command);
        assert.ok(to.frames[i]!.raw.equals(f.raw), `${f.command}: the v1 frame rebuilt (checksum included) is the one sent`);
      }
      // 3 + 1 + 16 per packet, plus 1 (short id) or 13 (long form) before the payload
      const payload = sent.reduce((n, f) => n + f.length, 0);
      const shortOnes = V2_SHORT_IDS.length - 1;
      assert.equal(to.bytesIn - before, sent.length * 20 + payload + shortOnes * 1 + (sent.length - shortOnes) * 13);
      to.frames.length = 0;
    }
    assert.deepEqual([a.failed, b.failed, a.dropped, b.dropped], [[], [], [], []]);
  } finally {
    close();
  }
});

test('rekeying: 1,000 packets each way (past 224, 448, ... in both ciphers)', async () => {
  const { a, b, close } = await pair();
  try {
    const wa = a.conn.writer(a.socket);
    const wb = b.conn.writer(b.socket);
    for (let i = 0; i < 1000; i++) {
      const nonce = Buffer.alloc(8);
      nonce.writeUInt32LE(i);
      wa.frame(encodeFrame(regtest, 'ping', nonce).raw);
      wb.frame(encodeFrame(regtest, 'pong', nonce).raw);
    }
    await waitFor(() => a.frames.length === 1000 && b.frames.length === 1000, 20_000, '1000 frames each way');
    for (let i = 0; i < 1000; i++) {
      assert.equal(b.frames[i]!.payload.readUInt32LE(0), i);
      assert.equal(a.frames[i]!.payload.readUInt32LE(0), i);
    }
    assert.deepEqual([a.failed, b.failed], [[], []]);
  } finally {
    close();
  }
});
