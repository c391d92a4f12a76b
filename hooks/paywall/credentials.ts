/**
 * Credentials: what a peer presents on a later connection to get its tier back without paying
 * again. A versioned binary body signed with HMAC-SHA256 (node:crypto), laid out in
 * docs/x-protocol.md §4.3.5:
 *
 *   u8 version (1) | u8 kind (1 pass, 2 credit) | u32 key_id | token_id[16] | payment_hash[32]
 *   | u64 expires_at (unix s; 0 for credit) | var_str tier | mac[32] = HMAC-SHA256(key, all before)
 *
 * Keys come from a file or an environment variable, never from the YAML: lines `KEY_ID HEX`
 * (at least 32 bytes of key), the LAST line signs and every line verifies, so rotation is
 * "append a new key, later remove the old one". Revocation (by token id) is the store's.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { codec } from '../../src/hooks/index.js';

export const CREDENTIAL_VERSION = 1;
export const KIND_PASS = 1;
export const KIND_CREDIT = 2;
export type CredentialKind = 'pass' | 'credit';
const MAC_SIZE = 32;
/** The largest credential: a 32-byte tier name plus the fixed fields. */
export const MAX_CREDENTIAL_SIZE = 62 + 1 + 32 + MAC_SIZE;

export interface CredentialBody {
  kind: CredentialKind;
  keyId: number;
  /** 16 random bytes naming this credential (revocation, and the balance for credit) */
  tokenId: Buffer;
  paymentHash: Buffer;
  /** unix seconds; 0 for credit, which lasts as long as its balance */
  expiresAt: number;
  tier: string;
}

export interface Keyring {
  keys: ReadonlyMap<number, Buffer>;
  signingKeyId: number;
}

/** Parse `KEY_ID HEX` lines (`#` comments, blank lines; `;` also separates, for env vars). */
export function parseKeyring(text: string, source: string): Keyring {
  const keys = new Map<number, Buffer>();
  let last = -1;
  text.split(/[\n;]/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const m = /^(\d{1,10})\s*[: ]\s*([0-9a-fA-F]+)$/.exec(line);
    if (!m) throw new Error(`${source}: entry ${i + 1} is not "KEY_ID HEX"`);
    const id = Number(m[1]);
    if (id > 0xffffffff) throw new Error(`${source}: key id ${id} does not fit 32 bits`);
    if (m[2]!.length % 2 !== 0 || m[2]!.length < 64) throw new Error(`${source}: key ${id} must be at least 32 bytes of hex`);
    if (keys.has(id)) throw new Error(`${source}: key id ${id} appears twice`);
    keys.set(id, Buffer.from(m[2]!, 'hex'));
    last = id;
  });
  if (last < 0) throw new Error(`${source}: no key (expected lines "KEY_ID HEX")`);
  return { keys, signingKeyId: last };
}

/** Keys from a file (`file`) or an environment variable (`env`), never from the config itself. */
export function loadKeyring(o: { file?: string | undefined; env?: string | undefined }, environment: NodeJS.ProcessEnv = process.env): Keyring {
  if (o.file) return parseKeyring(readFileSync(o.file, 'utf8'), o.file);
  if (o.env) {
    const v = environment[o.env];
    if (!v) throw new Error(`environment variable ${o.env} (credential keys) is not set`);
    return parseKeyring(v, `$${o.env}`);
  }
  throw new Error('credential keys: set keys.file or keys.env');
}

function body(b: Omit<CredentialBody, 'keyId'>, keyId: number): Buffer {
  if (b.tokenId.length !== 16 || b.paymentHash.length !== 32) throw new Error('credential: token id must be 16 bytes and payment hash 32');
  return new codec.PayloadWriter(64 + b.tier.length)
    .u8(CREDENTIAL_VERSION)
    .u8(b.kind === 'pass' ? KIND_PASS : KIND_CREDIT)
    .u32(keyId)
    .bytes(b.tokenId)
    .bytes(b.paymentHash)
    .u64(BigInt(b.expiresAt))
    .varString(b.tier)
    .finish();
}

const mac = (key: Buffer, data: Buffer) => createHmac('sha256', key).update(data).digest();

/** Sign with the newest key. */
export function signCredential(ring: Keyring, b: Omit<CredentialBody, 'keyId'>): Buffer {
  const data = body(b, ring.signingKeyId);
  return Buffer.concat([data, mac(ring.keys.get(ring.signingKeyId)!, data)]);
}

/** Why a credential was not accepted (revocation is checked by the caller against the store). */
export type CredentialProblem = 'malformed' | 'unknown_key' | 'bad_mac' | 'expired';
export type VerifyResult = { ok: true; credential: CredentialBody } | { ok: false; problem: CredentialProblem };

export function verifyCredential(ring: Keyring, bytes: Buffer, nowSeconds: number): VerifyResult {
  if (bytes.length <= MAC_SIZE || bytes.length > MAX_CREDENTIAL_SIZE) return { ok: false, problem: 'malformed' };
  const data = bytes.subarray(0, bytes.length - MAC_SIZE);
  let c: CredentialBody;
  try {
    const r = new codec.PayloadReader(data, 'credential');
    const version = r.u8('version');
    const kind = r.u8('kind');
    if (version !== CREDENTIAL_VERSION || (kind !== KIND_PASS && kind !== KIND_CREDIT)) return { ok: false, problem: 'malformed' };
    c = {
      kind: kind === KIND_PASS ? 'pass' : 'credit',
      keyId: r.u32('key_id'),
      tokenId: Buffer.from(r.bytes(16, 'token_id')),
      paymentHash: Buffer.from(r.bytes(32, 'payment_hash')),
      expiresAt: Number(r.u64('expires_at')),
      tier: r.varString('tier', 32),
    };
    r.end();
  } catch {
    return { ok: false, problem: 'malformed' };
  }
  const key = ring.keys.get(c.keyId);
  if (!key) return { ok: false, problem: 'unknown_key' };
  // the MAC first, so nothing about an unsigned body (its expiry) is reported
  if (!timingSafeEqual(mac(key, data), bytes.subarray(bytes.length - MAC_SIZE))) return { ok: false, problem: 'bad_mac' };
  if (c.kind === 'pass' && c.expiresAt <= nowSeconds) return { ok: false, problem: 'expired' };
  return { ok: true, credential: c };
}
