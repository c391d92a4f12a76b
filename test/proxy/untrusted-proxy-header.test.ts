/**
 * With v2 detection on (the default `v2: terminate`), a PROXY protocol header from a source that
 * is not a trusted balancer must not be taken for a BIP324 v2 opening and held until the v2
 * handshake times out: it is closed at once. Real implementation: litecoind behind the proxy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';

test('a PROXY v1 or v2 header from an untrusted source closes the connection at once; a v1 peer is still served', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const node = await startLitecoind({ name: 'untrusted-proxy-header', disableWallet: true });
  t.after(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, 'limits: { handshakeTimeout: 60s }');
  t.after(() => proxy.close());
  const v2sig = Buffer.from('0d0a0d0a000d0a515549540a2111000c7f0004637f0000019c40208d', 'hex');
  const v1line = Buffer.from('PROXY TCP4 127.0.4.99 127.0.0.1 40000 8333\r\n', 'latin1');
  for (const header of [v2sig, v1line]) {
    const c = await P2PClient.connect(proxy.port);
    c.socket.on('error', () => {});
    c.sendRaw(header);
    assert.equal(await c.closedWithin(5_000), true, `closed at once, not held as a v2 opening (${header.subarray(0, 6).toString('hex')})`);
  }
  // the same headers a byte at a time (a balancer's write split by TCP): the first byte alone already differs from the v1 magic
  for (const header of [v2sig, v1line]) {
    const c = await P2PClient.connect(proxy.port);
    c.socket.on('error', () => {});
    for (const byte of header) {
      if (!c.sendRaw(Buffer.of(byte))) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(await c.closedWithin(5_000), true, `split: closed at once, not held as a v2 opening (${header.subarray(0, 6).toString('hex')})`);
  }
  assert.equal(proxy.logs.filter((l) => l.msg === 'a PROXY protocol header from an untrusted source: closing').length, 4);
  const ok = await P2PClient.connect(proxy.port);
  await ok.handshake();
  await ok.close();
});
