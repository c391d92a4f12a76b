/**
 * hooks/paywall/store: the file-backed store on the real file system (a temp dir): one grant per
 * payment hash, balances, revocations, reopening, and refusing a corrupt file. The kill -9 test
 * of the claim path is in paywall.test.ts (a child process killed between settle and grant).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileStore, type GrantRecord } from '../../../hooks/paywall/store.js';

const dir = () => mkdtempSync(path.join(os.tmpdir(), 'bhp-paywall-store-'));
const grant = (hash: string, creditMsat = 0n): GrantRecord => ({
  paymentHash: hash,
  tokenId: hash.slice(0, 32),
  kind: creditMsat > 0n ? 'credit' : 'pass',
  tier: 'pro',
  expiresAt: 0,
  creditMsat,
  credential: 'aa',
  grantedAt: 1,
});

test('one grant per payment hash, ever, also after reopening; balances and revocations persist', async () => {
  const file = path.join(dir(), 'paywall.json');
  const s = new FileStore(file);
  await s.open();
  const h = 'ab'.repeat(32);
  await s.addInvoice({ paymentHash: h, claimToken: '00'.repeat(16), offer: 'credit', kind: 'credit', amountMsat: 50_000n, expiresAt: Date.now() / 1000 + 600, createdAt: 1 });
  // concurrent claims of one hash: exactly one is first
  const results = await Promise.all([s.claim(grant(h, 50_000n)), s.claim({ ...grant(h, 50_000n), tokenId: 'ff'.repeat(16) }), s.claim(grant(h, 50_000n))]);
  assert.equal(results.filter((r) => r.first).length, 1);
  assert.ok(results.every((r) => r.grant.tokenId === h.slice(0, 32)), 'later claims get the first grant');
  assert.equal(await s.balance(h.slice(0, 32)), 50_000n, 'credited once');
  assert.equal(await s.debit(h.slice(0, 32), 20_000n), 30_000n);
  await s.revoke('cd'.repeat(16));
  await s.close();

  const again = new FileStore(file);
  await again.open();
  assert.equal((await again.claim(grant(h, 50_000n))).first, false, 'the claimed set survives a restart');
  assert.equal(await again.balance(h.slice(0, 32)), 30_000n);
  assert.equal(await again.isRevoked('cd'.repeat(16)), true);
  assert.equal((await again.invoice(h))?.amountMsat, 50_000n);
  assert.equal(await again.debit(h.slice(0, 32), 1_000_000n), 0n, 'a debit never goes below zero');
  await again.close();
  assert.deepEqual(readdirSync(path.dirname(file)), ['paywall.json'], 'no temporary files left');
});

test('a corrupt store file refuses to open instead of forgetting claims; stale temporaries are removed', async () => {
  const d = dir();
  const file = path.join(d, 'paywall.json');
  writeFileSync(file, '{"version":1,"claims":[');
  await assert.rejects(new FileStore(file).open(), /not valid JSON.*refusing/);
  writeFileSync(file, JSON.stringify({ version: 1 }));
  writeFileSync(path.join(d, 'paywall.json.999999999.1.tmp'), 'half');
  await new FileStore(file).open();
  assert.deepEqual(readdirSync(d), ['paywall.json']);
});

test('a failed write is not acknowledged and the claim is not kept', async () => {
  const d = dir();
  const s = new FileStore(path.join(d, 'missing-parent', 'x', 'paywall.json'));
  await s.open();
  // make the directory unwritable by putting a file where the parent directory should be
  writeFileSync(path.join(d, 'missing-parent'), 'not a dir');
  await assert.rejects(s.claim(grant('cd'.repeat(32), 10n)));
  assert.equal(await s.balance('cd'.repeat(16)), 0n);
  assert.equal((await s.grants()).length, 0);
});
