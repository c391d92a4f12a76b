/**
 * The client in front of a node whose protocol is below 70016 (bcoin 1.0.2 says 70015): the proxy
 * forwards the node's own number (docs/x-protocol.md §2.3), so a client following §7 cannot
 * announce the x: feature, and the proxy answers no x: message (§2.7). The client must say so
 * at once instead of sending x:hello into silence and timing out with "try again later".
 * Real parts: bcoin from npm behind the real proxy with the features hook, over TCP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NETWORKS } from '../../src/codec/index.js';
import { BuyerError, XConnection } from '../../src/client/index.js';
import { bcoinAvailable, startBcoin } from '../support/bcoin-node.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { cleanupStack } from '../support/cleanup.js';

const FEATURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../hooks/features.js');

test('a node below 70016 behind the proxy: no_x_feature at once, naming the version', { skip: bcoinAvailable() ? false : 'bcoin not installed', timeout: 60_000 }, async (t) => {
  const steps = cleanupStack(t);
  const node = await startBcoin({ name: 'old-node', sync: false });
  steps.push(() => node.stop());
  const proxy = await startTestProxy(node.port, `hooks:\n  - { module: ${JSON.stringify(FEATURES)} }`);
  steps.push(() => proxy.close());
  const started = Date.now();
  const err = await XConnection.connect({ host: '127.0.0.1', port: proxy.port, network: NETWORKS.regtest, requestTimeoutMs: 20_000 }).then(
    async (c) => {
      try {
        await c.hello();
        return null;
      } finally {
        c.close();
      }
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof BuyerError, `a BuyerError, got ${String(err)}`);
  assert.equal(err.code, 'no_x_feature', err.message);
  assert.match(err.message, /70015/, 'the message names the version that stops it');
  assert.ok(Date.now() - started < 10_000, `failed at once, not after a request timeout (${Date.now() - started} ms)`);
});
