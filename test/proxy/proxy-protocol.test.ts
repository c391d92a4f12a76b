/**
 * PROXY protocol framing and parsing (src/proxy/proxy-protocol.ts) on headers built byte by
 * byte from HAProxy's spec (proxy-protocol.txt §2.1, §2.2), including hostile ones. HAProxy
 * itself sends the headers in test/proxy/load-balancer.test.ts and in the last test here
 * (Debian's haproxy in front of the proxy, litecoind 0.21 behind it).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerLength, looksLikeProxyHeader, parseHeader, ProxyHeaderError } from '../../src/proxy/proxy-protocol.js';
import { cleanupStack } from '../support/cleanup.js';
import { haproxyMissing, startHaproxy } from '../support/haproxy.js';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { startDribbleRelay } from '../support/dribble-relay.js';
import { fileSeed, filePrng, randomBytes, seedNote } from '../support/seed.js';

const rand = filePrng(import.meta.url);
const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

function v2(command: number, family: number, body: Buffer): Buffer {
  const h = Buffer.alloc(16);
  SIG.copy(h);
  h[12] = 0x20 | command;
  h[13] = family;
  h.writeUInt16BE(body.length, 14);
  return Buffer.concat([h, body]);
}
const ipv4Body = (src: number[], sport: number) => Buffer.from([...src, 127, 0, 0, 1, sport >> 8, sport & 255, 0x20, 0x8d]);

test('v1 TCP4 and TCP6 give the client address and port; UNKNOWN is the balancer itself', () => {
  const h = Buffer.from('PROXY TCP4 203.0.113.7 127.0.0.1 51000 8333\r\n');
  assert.equal(headerLength(Buffer.concat([h, Buffer.from('rest')])), h.length);
  assert.deepEqual(parseHeader(h), { kind: 'proxy', address: '203.0.113.7', port: 51000, version: 1 });
  const h6 = Buffer.from('PROXY TCP6 2001:db8::7 ::1 51000 8333\r\n');
  assert.deepEqual(parseHeader(h6), { kind: 'proxy', address: '2001:db8::7', port: 51000, version: 1 });
  assert.deepEqual(parseHeader(Buffer.from('PROXY UNKNOWN\r\n')), { kind: 'local', version: 1 });
});

test('v2 PROXY over IPv4 and IPv6, and LOCAL', () => {
  const h = v2(1, 0x11, ipv4Body([198, 51, 100, 9], 40000));
  assert.equal(headerLength(Buffer.concat([h, Buffer.from([0xfa, 0xbf])])), h.length);
  assert.deepEqual(parseHeader(h), { kind: 'proxy', address: '198.51.100.9', port: 40000, version: 2 });
  const src6 = Buffer.from('20010db8000000000000000000000009', 'hex');
  const h6 = v2(1, 0x21, Buffer.concat([src6, Buffer.alloc(15), Buffer.from([1]), Buffer.from([0x9c, 0x40, 0x20, 0x8d])]));
  assert.deepEqual(parseHeader(h6), { kind: 'proxy', address: '2001:db8::9', port: 40000, version: 2 });
  const mapped = Buffer.from('00000000000000000000ffffc6336409', 'hex');
  const hm = v2(1, 0x21, Buffer.concat([mapped, Buffer.alloc(16), Buffer.from([0x9c, 0x40, 0x20, 0x8d])]));
  assert.equal((parseHeader(hm) as { address: string }).address, '198.51.100.9', 'an IPv4-mapped source is given as IPv4, as bans see it');
  assert.deepEqual(parseHeader(v2(0, 0x00, Buffer.alloc(0))), { kind: 'local', version: 2 });
  // TLVs after the addresses (HAProxy may add some) are skipped
  const tlv = v2(1, 0x11, Buffer.concat([ipv4Body([10, 1, 2, 3], 1), Buffer.from([0x04, 0x00, 0x02, 0xaa, 0xbb])]));
  assert.equal((parseHeader(tlv) as { address: string }).address, '10.1.2.3');
});

test('a header arriving a byte at a time is framed exactly', () => {
  for (const h of [Buffer.from('PROXY TCP4 203.0.113.7 127.0.0.1 51000 8333\r\n'), v2(1, 0x11, ipv4Body([1, 2, 3, 4], 5))]) {
    for (let n = 1; n < h.length; n++) assert.equal(headerLength(h.subarray(0, n)), 0, `${n} bytes: incomplete`);
    assert.equal(headerLength(h), h.length);
  }
});

test('hostile and malformed headers are refused with ProxyHeaderError', () => {
  const bad: Buffer[] = [
    Buffer.from('\xf9\xbe\xb4\xd9version', 'latin1'), // a P2P frame: no header at all
    Buffer.from('PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n'),
    Buffer.from('PROXY TCP4 ::1 127.0.0.1 1 2\r\n'),
    Buffer.from('PROXY TCP4 1.2.3.4 127.0.0.1 70000 2\r\n'),
    Buffer.from('PROXY TCP9 1.2.3.4 127.0.0.1 1 2\r\n'),
    Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), // no CRLF within 107 bytes
    v2(1, 0x11, Buffer.alloc(4)), // shorter than an IPv4 address block
    v2(1, 0x31, Buffer.alloc(216)), // AF_UNIX
    v2(2, 0x11, ipv4Body([1, 2, 3, 4], 5)), // unknown command
  ];
  const big = Buffer.alloc(16);
  SIG.copy(big);
  big[12] = 0x21;
  big[13] = 0x11;
  big.writeUInt16BE(65535, 14);
  bad.push(big); // declares 64 KiB
  for (const b of bad) {
    assert.throws(
      () => {
        const n = headerLength(b);
        if (n === 0) throw new ProxyHeaderError('incomplete');
        parseHeader(b.subarray(0, n));
      },
      ProxyHeaderError,
      JSON.stringify(b.toString('latin1').slice(0, 60)),
    );
  }
  // random bytes never crash the framer: they are refused or wait for more
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.concat([rand() < 0.5 ? SIG : Buffer.from('PROXY '), randomBytes(rand, Math.floor(rand() * 120))]);
    try {
      const n = headerLength(b);
      if (n > 0) parseHeader(b.subarray(0, n));
    } catch (err) {
      assert.ok(err instanceof ProxyHeaderError, String(err));
    }
  }
  assert.equal(looksLikeProxyHeader(Buffer.from('PRO')), true);
  assert.equal(looksLikeProxyHeader(Buffer.from('GET /')), false);
});

test(`handshakeTimeout: 0 (no handshake timer), HAProxy's header arriving in pieces: the connections are served, not refused for a 0 ms header wait (${seedNote(import.meta.url)})`, { skip: haproxyMissing || litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'pp-no-timeout', disableWallet: true });
  cleanup.push(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, 'limits: { handshakeTimeout: 0 }\nproxyProtocol: { trusted: ["127.0.0.1/32"] }');
  cleanup.push(() => proxy.close());
  // between the balancer and the proxy, as a slow network would: the header in pieces, 10 ms apart
  const relay = await startDribbleRelay(proxy.port, { maxPiece: 7, delayMs: 10, seed: fileSeed(import.meta.url) });
  cleanup.push(() => relay.close());
  for (const sendProxy of ['send-proxy', 'send-proxy-v2'] as const) {
    const lb = await startHaproxy([relay.port], sendProxy);
    cleanup.push(() => lb.stop());
    const c = await P2PClient.connect(lb.port, { localAddress: '127.0.4.30' });
    cleanup.push(() => c.close());
    await c.handshake(20_000);
    assert.ok(proxy.proxy.sessions().some((s) => s.info.address === '127.0.4.30'), `${sendProxy}: the session has the client's address`);
  }
});
