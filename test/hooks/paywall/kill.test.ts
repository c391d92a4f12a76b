/**
 * kill -9 between settle and grant (hooks/paywall): a child process (kill-child.ts) runs the
 * paywall through the real chain runner with the file store on the real file system, pays a
 * dev-backend invoice and claims it; the moment the claim is durable it is SIGKILLed, before the
 * grant is sent. A fresh paywall on the same store file then loses no claim and grants nothing
 * twice: the same claim gets the same grant (marked redelivered), a claim with another token
 * is refused. No P2P node is involved: this is about the store and the claim path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHookHarness } from '../../../src/hooks/testing.js';
import { X_FEATURE_ID } from '../../../src/hooks/index.js';
import { createPaywallHook } from '../../../hooks/paywall/index.js';
import * as P from '../../../hooks/paywall/protocol.js';
import { waitFor } from '../../support/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));

test('kill -9 between settle and grant loses no claim and grants nothing twice', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-paywall-kill-'));
  const storeFile = path.join(dir, 'paywall.json');
  const keysFile = path.join(dir, 'keys');
  writeFileSync(keysFile, `1 ${createHash('sha256').update('kill.test.ts').digest('hex')}\n`);
  const child = spawn(process.execPath, [path.join(here, 'kill-child.js'), storeFile, keysFile], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BHP_PAYWALL_KILL_CHILD: '1' } });
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  child.stdout.on('data', (c: Buffer) => {
    buf += c.toString('utf8');
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
  const claimed = await waitFor(() => lines.find((l) => 'claimed' in l), 30_000, 'the child to record the claim');
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  assert.equal(claimed.first, true);
  assert.ok(!lines.some((l) => 'granted' in l), 'the child died before sending the grant');
  const bought = lines.find((l) => 'hash' in l) as { hash: string; token: string; preimage: string };

  // the proxy restarts on the same store
  const h = await createHookHarness([{ module: createPaywallHook(), options: { backend: { kind: 'dev' }, store: { file: storeFile }, keys: { file: keysFile }, passes: { pro: { priceSats: 2000, duration: '24h' } } } }]);
  try {
    const features = new Map([[X_FEATURE_ID, Buffer.alloc(0)]]);
    const buyer = h.peer({ features });
    const claim = (token: string, nonce: bigint) =>
      P.encodeClaim({ nonce, paymentHash: Buffer.from(bought.hash, 'hex'), claimToken: Buffer.from(token, 'hex'), preimage: Buffer.from(bought.preimage, 'hex') });
    const answer = async (nonce: bigint) => (await waitFor(() => h.sent.find((s) => s.message.payload && Buffer.from(s.message.payload).readBigUInt64LE(0) === nonce), 10_000, `answer ${nonce}`)).message;
    await h.deliver(buyer, 'inbound', P.CMD.claim, claim(bought.token, 10n));
    const a = await answer(10n);
    assert.equal(a.command, P.CMD.grant, 'the paid claim is not lost');
    const g = P.decodeGrant(Buffer.from(a.payload!));
    assert.equal(g.flags & P.GRANT_REDELIVERED, P.GRANT_REDELIVERED, 'it is the grant recorded before the crash');
    assert.equal(g.credential.subarray(6, 22).toString('hex'), claimed.claimed, 'same token id as the child recorded');
    assert.equal(buyer.state.get('tier'), 'pro');

    await h.deliver(buyer, 'inbound', P.CMD.claim, claim(bought.token, 11n));
    assert.deepEqual(P.decodeGrant(Buffer.from((await answer(11n)).payload!)).credential, g.credential, 'again the same grant');
    const other = h.peer({ features, address: '203.0.113.9' });
    await h.deliver(other, 'inbound', P.CMD.claim, claim('00'.repeat(16), 12n));
    assert.equal(P.decodeRefuse(Buffer.from((await answer(12n)).payload!)).code, P.REFUSE.not_yours);
    assert.equal(((await h.admin('paywall', 'GET grants')) as { grants: unknown[] }).grants.length, 1, 'one grant in the store');
  } finally {
    await h.close();
  }
});
