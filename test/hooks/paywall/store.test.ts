/**
 * hooks/paywall/store: the file-backed store on the real file system (a temp dir): one grant per
 * payment hash, balances, revocations, reopening, and refusing a corrupt file. The kill -9 test
 * of the claim path is in paywall.test.ts (a child process killed between settle and grant).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { FileStore, type GrantRecord, type IssuedInvoice } from '../../../hooks/paywall/store.js';
import { SharedPaywallStore } from '../../../hooks/paywall/shared-store.js';
import { RedisStore } from '../../../src/store/redis-store.js';
import { cleanupStack } from '../../support/cleanup.js';
import { RedisServer, redisSkipReason } from '../../support/redis.js';

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
  assert.deepEqual(readdirSync(path.dirname(file)).sort(), ['paywall.json', 'paywall.json.invoices'], 'no temporary files left');
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

const invoice = (hash: string, expiresAt = Math.floor(Date.now() / 1000) + 600): IssuedInvoice => ({
  paymentHash: hash,
  claimToken: '00'.repeat(16),
  offer: 'pro',
  kind: 'pass',
  tier: 'pro',
  durationSeconds: 3600,
  amountMsat: 2_000_000n,
  expiresAt,
  createdAt: 1,
});
const hashOf = (n: number) => n.toString(16).padStart(64, '0');
const journalLines = (file: string) => readFileSync(`${file}.invoices`, 'utf8').split('\n').filter(Boolean);

test('invoices go to an append-only journal (issuing one no longer rewrites every invoice issued before); it survives reopening, a torn last line and the old file format', async () => {
  const d = dir();
  const file = path.join(d, 'paywall.json');
  const s = new FileStore(file);
  await s.open();
  for (let i = 1; i <= 3; i++) await s.addInvoice(invoice(hashOf(i)));
  await s.keepPaid(hashOf(1));
  await s.forgetInvoice(hashOf(2));
  await s.claim(grant(hashOf(3)));
  await s.forgetInvoice(hashOf(3)); // claimed: never forgotten
  await s.close();
  assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { invoices?: unknown }).invoices, undefined, 'the main file holds no invoices');
  assert.deepEqual(journalLines(file).map((l) => (JSON.parse(l) as { op: string }).op), ['add', 'add', 'add', 'paid', 'forget']);

  // a crash in the middle of an append leaves a torn last line: it was never acknowledged
  appendFileSync(`${file}.invoices`, '{"op":"add","paymentHash":"ee');
  const again = new FileStore(file);
  await again.open();
  assert.equal((await again.invoice(hashOf(1)))?.paid, true);
  assert.equal(await again.invoice(hashOf(2)), undefined);
  assert.ok(await again.invoice(hashOf(3)));
  assert.deepEqual((await again.unsettled()).map((i) => i.paymentHash), [], 'paid or claimed: nothing left to ask about');
  await again.addInvoice(invoice(hashOf(4)));
  await again.close();
  assert.ok(journalLines(file).every((l) => JSON.parse(l)), 'the torn line is gone: the journal was rewritten whole');
  assert.deepEqual(journalLines(file).map((l) => (JSON.parse(l) as { paymentHash: string }).paymentHash).sort(), [1, 3, 4].map(hashOf));

  // a bad line that is not the last is corruption, refused like a corrupt main file
  writeFileSync(`${file}.invoices`, `not json\n${journalLines(file).join('\n')}\n`);
  await assert.rejects(new FileStore(file).open(), /line 1 is not valid JSON.*refusing/);

  // the format before the journal: invoices in the main file move to the journal at open
  const old = path.join(d, 'old.json');
  writeFileSync(old, JSON.stringify({ version: 1, invoices: [{ ...invoice(hashOf(9)), amountMsat: '2000000' }], claims: [], balances: {}, revoked: [] }));
  const migrated = new FileStore(old);
  await migrated.open();
  await migrated.revoke('ab'.repeat(16)); // rewrites the main file, now without invoices
  await migrated.close();
  const reopened = new FileStore(old);
  await reopened.open();
  assert.equal((await reopened.invoice(hashOf(9)))?.amountMsat, 2_000_000n, 'the old file\'s invoice survived its rewrite');
});

test('an invoice found paid is kept however long ago it expired; forgotten ones are compacted away', async () => {
  const file = path.join(dir(), 'paywall.json');
  const s = new FileStore(file);
  await s.open();
  const twoDaysAgo = Math.floor(Date.now() / 1000) - 2 * 86_400;
  const n = 3000;
  await Promise.all(Array.from({ length: n }, (_, i) => s.addInvoice(invoice(hashOf(i + 1), twoDaysAgo))));
  await s.keepPaid(hashOf(1));
  for (let i = 2; i <= n; i++) await s.forgetInvoice(hashOf(i));
  await s.revoke('cd'.repeat(16)); // a main-file write: it once pruned invoices a day past expiry, paid or not
  await s.addInvoice(invoice(hashOf(n + 1)));
  await s.close();
  assert.ok(journalLines(file).length <= 2 * 2 + 1000 + 1, `compacted: ${journalLines(file).length} lines for 2 live invoices`);
  const again = new FileStore(file);
  await again.open();
  assert.equal((await again.invoice(hashOf(1)))?.paid, true, 'the paid invoice, expired two days ago, is still claimable');
  assert.equal(await again.invoice(hashOf(2)), undefined);
  assert.deepEqual((await again.unsettled()).map((i) => i.paymentHash), [hashOf(n + 1)]);
});

test('invoices in the old-format main file next to an existing journal (a rollback to the previous version, then back) survive the next main-file write', async () => {
  // Real file system. The journal was made by this version; the rollback's version then wrote
  // the invoices it issued into the main file, as it always did, and knew nothing of the journal.
  const file = path.join(dir(), 'paywall.json');
  const s = new FileStore(file);
  await s.open();
  await s.addInvoice(invoice(hashOf(1)));
  await s.close();
  writeFileSync(file, JSON.stringify({ version: 1, invoices: [{ ...invoice(hashOf(2)), amountMsat: '2000000' }], claims: [], balances: {}, revoked: [] }));

  const upgraded = new FileStore(file);
  await upgraded.open();
  assert.ok(await upgraded.invoice(hashOf(2)), 'the rollback\'s invoice is read');
  await upgraded.revoke('ab'.repeat(16)); // rewrites the main file, without invoices
  await upgraded.close();
  const reopened = new FileStore(file);
  await reopened.open();
  assert.ok(await reopened.invoice(hashOf(1)), 'the journal\'s invoice');
  assert.equal((await reopened.invoice(hashOf(2)))?.amountMsat, 2_000_000n, 'the invoice issued during the rollback is still claimable after the main file was rewritten');
});

test('a journal saved by an editor without its final newline keeps its last invoice', async () => {
  // Real file system. Editors such as VS Code save without a final newline by default: the last
  // line is whole, not torn by a crash, and may be the only record of a paid invoice.
  const file = path.join(dir(), 'paywall.json');
  const s = new FileStore(file);
  await s.open();
  await s.addInvoice(invoice(hashOf(1)));
  await s.addInvoice(invoice(hashOf(2)));
  await s.close();
  writeFileSync(`${file}.invoices`, journalLines(file).join('\n')); // no newline after the last line
  const edited = new FileStore(file);
  await edited.open();
  await edited.addInvoice(invoice(hashOf(3))); // the journal is rewritten whole
  await edited.close();
  const reopened = new FileStore(file);
  await reopened.open();
  assert.ok(await reopened.invoice(hashOf(2)), 'the last line of the edited journal is kept');
  assert.ok(await reopened.invoice(hashOf(3)));
});

test('shared store (Redis): a claimed invoice outlives its one-day time to live, so a buyer whose grant was lost can claim it again', { skip: redisSkipReason(), timeout: 30_000 }, async (t) => {
  // Real Redis (Debian's redis-server on a free port) behind the proxy's RedisStore, as a fleet
  // runs it. Redelivering a grant needs the invoice (its claim token proves the claimer is the
  // buyer, not a routing node that saw the preimage); it had the one-day time to live of an
  // unclaimed invoice, so a claim retried a day later was refused as not_issued.
  const cleanup = cleanupStack(t);
  const redis = await RedisServer.start();
  cleanup.push(() => redis.stop());
  const rs = new RedisStore({ redis: redis.url, prefix: 'claimed:', syncInterval: 60_000, pingInterval: 100 }, pino({ level: 'silent' }));
  await rs.start();
  cleanup.push(() => rs.close());
  const s = new SharedPaywallStore(rs.hookStore('paywall'));
  const now = Math.floor(Date.now() / 1000);
  await s.addInvoice(invoice(hashOf(1), now - 86_400 + 1)); // expired a day ago: one second left to live
  assert.equal((await s.claim(grant(hashOf(1)))).first, true);
  await new Promise((r) => setTimeout(r, 2500));
  assert.ok(await s.claimed(hashOf(1)), 'the claim');
  assert.ok(await s.invoice(hashOf(1)), 'and its invoice, to check the claim token of a retried claim');
});
