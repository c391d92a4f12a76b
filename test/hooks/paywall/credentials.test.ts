/**
 * hooks/paywall/credentials: HMAC-SHA256 credentials (node:crypto), key files and env vars,
 * rotation, and every way a credential is refused. Pure functions: no network involved.
 * Randomness: fixed key material and token ids, no Math.random.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { parseKeyring, signCredential, verifyCredential, loadKeyring, type CredentialBody } from '../../../hooks/paywall/credentials.js';
import { secretFile } from './standins.js';

const K1 = '11'.repeat(32);
const K2 = '22'.repeat(32);
const NOW = 1_800_000_000;
const pass: Omit<CredentialBody, 'keyId'> = { kind: 'pass', tokenId: Buffer.alloc(16, 7), paymentHash: Buffer.alloc(32, 9), expiresAt: NOW + 3600, tier: 'pro' };

test('sign and verify; the MAC is HMAC-SHA256 over the body with the key named by key_id', () => {
  const ring = parseKeyring(`1 ${K1}\n`, 't');
  const c = signCredential(ring, pass);
  const v = verifyCredential(ring, c, NOW);
  assert.ok(v.ok);
  assert.equal(v.credential.tier, 'pro');
  assert.equal(v.credential.keyId, 1);
  assert.deepEqual(v.credential.tokenId, pass.tokenId);
  // recompute independently: the last 32 bytes are HMAC-SHA256(key, everything before)
  const data = c.subarray(0, c.length - 32);
  assert.deepEqual(c.subarray(c.length - 32), createHmac('sha256', Buffer.from(K1, 'hex')).update(data).digest());
  assert.equal(data[0], 1, 'version 1');
  assert.equal(data.readUInt32LE(2), 1, 'key id');
});

test('rotation: the newest key signs, older keys still verify, a removed key does not', () => {
  const old = parseKeyring(`1 ${K1}`, 't');
  const rotated = parseKeyring(`# keys, oldest first\n1 ${K1}\n2 ${K2}\n`, 't');
  const before = signCredential(old, pass);
  const after = signCredential(rotated, pass);
  assert.equal(after.readUInt32LE(2), 2, 'the last key signs');
  assert.ok(verifyCredential(rotated, before, NOW).ok, 'an old credential still verifies');
  const retired = parseKeyring(`2 ${K2}`, 't');
  assert.deepEqual(verifyCredential(retired, before, NOW), { ok: false, problem: 'unknown_key' });
});

test('forged, wrong-key, expired and malformed credentials are refused with their reason', () => {
  const ring = parseKeyring(`1 ${K1}`, 't');
  const good = signCredential(ring, pass);
  // forged: a longer pass written into a signed credential
  const forged = Buffer.from(good);
  forged.writeBigUInt64LE(BigInt(NOW + 10 * 365 * 86400), 54);
  assert.deepEqual(verifyCredential(ring, forged, NOW), { ok: false, problem: 'bad_mac' });
  // wrong key with the same id (someone else's proxy, or a guessed key)
  const other = signCredential(parseKeyring(`1 ${K2}`, 't'), pass);
  assert.deepEqual(verifyCredential(ring, other, NOW), { ok: false, problem: 'bad_mac' });
  assert.deepEqual(verifyCredential(ring, signCredential(ring, { ...pass, expiresAt: NOW - 1 }), NOW), { ok: false, problem: 'expired' });
  assert.ok(verifyCredential(ring, signCredential(ring, { ...pass, kind: 'credit', expiresAt: 0 }), NOW).ok, 'credit does not expire');
  for (const bad of [Buffer.alloc(0), Buffer.alloc(32), good.subarray(0, 40), Buffer.concat([good, Buffer.alloc(200)])]) {
    assert.deepEqual(verifyCredential(ring, bad, NOW), { ok: false, problem: 'malformed' });
  }
  const v2 = Buffer.from(good);
  v2[0] = 2;
  assert.deepEqual(verifyCredential(ring, v2, NOW), { ok: false, problem: 'malformed' });
});

test('keys from a file or an environment variable; bad key material refuses to load with a clear error', () => {
  const f = secretFile(`7 ${K1}\n`);
  assert.equal(loadKeyring({ file: f }).signingKeyId, 7);
  assert.equal(loadKeyring({ env: 'PAYWALL_KEYS' }, { PAYWALL_KEYS: `1:${K1};2:${K2}` }).signingKeyId, 2);
  assert.throws(() => loadKeyring({ env: 'NOPE' }, {}), /NOPE.*not set/);
  assert.throws(() => parseKeyring('1 abcd', 'k'), /at least 32 bytes/);
  assert.throws(() => parseKeyring(`1 ${K1}\n1 ${K2}`, 'k'), /twice/);
  assert.throws(() => parseKeyring('# nothing', 'k'), /no key/);
  assert.throws(() => loadKeyring({}), /keys.file or keys.env/);
});
