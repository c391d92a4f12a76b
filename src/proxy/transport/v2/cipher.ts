import * as crypto from 'node:crypto';
import { createRequire } from 'node:module';

type ElligatorSwift = typeof import('@scure/btc-signer/p2p.js').elligatorSwift;
let ellswift: ElligatorSwift | null = null;

/**
 * @scure/btc-signer and @noble/curves (about 9 MB resident), loaded by the first v2 key: a
 * proxy whose peers all speak v1 never needs them. require() of the ES module (Node >= 20.19)
 * keeps the handshake synchronous, so bytes that arrive meanwhile cannot overtake it.
 */
function elligatorSwift(): ElligatorSwift {
  return (ellswift ??= (createRequire(import.meta.url)('@scure/btc-signer/p2p.js') as typeof import('@scure/btc-signer/p2p.js')).elligatorSwift);
}

/** BIP324: both rekeying ciphers change key every 224 messages. */
export const REKEY_INTERVAL = 224;
export const LENGTH_FIELD_LEN = 3;
export const HEADER_LEN = 1;
export const TAG_LEN = 16;
/** the ignore bit of the header byte: a decoy packet */
export const IGNORE_BIT = 0x80;
export const ELLSWIFT_LEN = 64;
export const GARBAGE_TERMINATOR_LEN = 16;
export const MAX_GARBAGE_LEN = 4095;

const ZEROS_32 = Buffer.alloc(32);
const PLAIN_HEADER = Buffer.of(0);
/** contents up to this size are gathered into one buffer before encryption */
const SMALL_PACKET = 16 * 1024;
const DECOY_HEADER = Buffer.of(IGNORE_BIT);

/** 96-bit nonce: LE32(inner) || LE64(outer) (outer stays far below 2^53: one per 224 packets). */
function nonce(inner: number, outer: number): Buffer {
  const n = Buffer.allocUnsafe(12);
  n.writeUInt32LE(inner >>> 0, 0);
  n.writeUInt32LE(outer >>> 0, 4);
  n.writeUInt32LE(Math.floor(outer / 0x1_0000_0000), 8);
  return n;
}

/**
 * BIP324 FSChaCha20: one ChaCha20 keystream per 224 chunks (nonce LE32(0) || LE64(epoch)),
 * consumed across chunks; after the 224th chunk the next 32 keystream bytes become the key.
 * Node's chacha20 (16-byte iv: LE32 block counter || 12-byte nonce) keeps the partial block
 * between update() calls, so one cipher object serves a whole epoch.
 */
export class FSChaCha20 {
  #key: Buffer;
  #chunk = 0;
  #stream: crypto.Cipher;

  constructor(key: Uint8Array) {
    this.#key = Buffer.from(key);
    this.#stream = this.#open();
  }

  #open(): crypto.Cipher {
    const iv = Buffer.alloc(16);
    nonce(0, Math.floor(this.#chunk / REKEY_INTERVAL)).copy(iv, 4);
    return crypto.createCipheriv('chacha20', this.#key, iv);
  }

  crypt(chunk: Uint8Array): Buffer {
    const out = this.#stream.update(chunk);
    if ((this.#chunk + 1) % REKEY_INTERVAL === 0) {
      this.#key = this.#stream.update(ZEROS_32);
      this.#chunk++;
      this.#stream = this.#open();
    } else this.#chunk++;
    return out;
  }
}

/**
 * BIP324 FSChaCha20Poly1305: RFC 8439 AEAD with nonce LE32(packet % 224) || LE64(packet / 224);
 * after every 224th packet the key becomes the first 32 bytes of encrypting 32 zero bytes
 * under nonce 0xffffffff || LE64(epoch).
 */
export class FSChaCha20Poly1305 {
  #key: Buffer;
  #packet = 0;

  constructor(key: Uint8Array) {
    this.#key = Buffer.from(key);
  }

  /** The ciphertext of `parts` (one piece per part), then the tag: ready for a vectored write. */
  encrypt(aad: Uint8Array, parts: readonly Uint8Array[]): Buffer[] {
    const n = this.#nonce();
    const c = crypto.createCipheriv('chacha20-poly1305', this.#key, n, { authTagLength: TAG_LEN });
    if (aad.length > 0) {
      let len = 0;
      for (const p of parts) len += p.length;
      c.setAAD(aad, { plaintextLength: len });
    }
    const out = parts.map((p) => c.update(p));
    c.final();
    out.push(c.getAuthTag());
    this.#advance(n);
    return out;
  }

  /** The plaintext, or null when the tag does not verify (the packet counter still advances). */
  decrypt(aad: Uint8Array, body: Uint8Array, tag: Uint8Array): Buffer | null {
    const open = this.open(aad, body.length);
    const plain = open.update(body);
    return open.finish(tag) ? plain : null;
  }

  /**
   * Decrypt the next packet piecewise, as its bytes arrive (a 4 MB block is not gathered first).
   * What update() returns is unauthenticated until finish(tag) says true.
   */
  open(aad: Uint8Array, length: number): OpenPacket {
    const n = this.#nonce();
    const d = crypto.createDecipheriv('chacha20-poly1305', this.#key, n, { authTagLength: TAG_LEN });
    if (aad.length > 0) d.setAAD(aad, { plaintextLength: length });
    this.#advance(n);
    return {
      update: (piece) => d.update(piece),
      finish: (tag) => {
        d.setAuthTag(tag);
        try {
          d.final();
          return true;
        } catch {
          return false;
        }
      },
    };
  }

  #nonce(): Buffer {
    return nonce(this.#packet % REKEY_INTERVAL, Math.floor(this.#packet / REKEY_INTERVAL));
  }

  #advance(n: Buffer): void {
    if ((this.#packet + 1) % REKEY_INTERVAL === 0) {
      n.writeUInt32LE(0xffffffff, 0);
      const c = crypto.createCipheriv('chacha20-poly1305', this.#key, n, { authTagLength: TAG_LEN });
      this.#key = c.update(ZEROS_32);
      c.final();
    }
    this.#packet++;
  }
}

export interface OpenPacket {
  update(piece: Uint8Array): Buffer;
  /** true when the tag authenticates everything given to update() */
  finish(tag: Uint8Array): boolean;
}

/** The secrets of one BIP324 session, derived from the ECDH secret (HKDF-SHA256). */
export interface SessionKeys {
  initiatorL: Buffer;
  initiatorP: Buffer;
  responderL: Buffer;
  responderP: Buffer;
  /** what the initiator sends after its garbage, then what the responder sends */
  initiatorTerminator: Buffer;
  responderTerminator: Buffer;
  sessionId: Buffer;
}

export function deriveKeys(sharedSecret: Uint8Array, magic: Uint8Array): SessionKeys {
  const salt = Buffer.concat([Buffer.from('bitcoin_v2_shared_secret', 'latin1'), magic]);
  const expand = (info: string) => Buffer.from(crypto.hkdfSync('sha256', sharedSecret, salt, Buffer.from(info, 'latin1'), 32));
  const terminators = expand('garbage_terminators');
  return {
    initiatorL: expand('initiator_L'),
    initiatorP: expand('initiator_P'),
    responderL: expand('responder_L'),
    responderP: expand('responder_P'),
    initiatorTerminator: terminators.subarray(0, GARBAGE_TERMINATOR_LEN),
    responderTerminator: terminators.subarray(GARBAGE_TERMINATOR_LEN),
    sessionId: expand('session_id'),
  };
}

/** Our ephemeral key: a random secret and its 64-byte ElligatorSwift encoding. */
export interface EphemeralKey {
  secret: Uint8Array;
  ellswift: Uint8Array;
}

/**
 * The secp256k1 arithmetic runs in OpenSSL (node:crypto's ECDH: key generation and the
 * multiplication, about 2.5 times faster per handshake than bigint arithmetic); the
 * ElligatorSwift encoding and decoding, which OpenSSL lacks, come from @scure/btc-signer over
 * @noble/curves. Both are checked against BIP324's vectors.
 */
export function newEphemeralKey(): EphemeralKey {
  const ecdh = crypto.createECDH('secp256k1');
  ecdh.generateKeys();
  const x = ecdh.getPublicKey(null, 'compressed').subarray(1);
  return { secret: fixed32(ecdh.getPrivateKey()), ellswift: elligatorSwift().encode(BigInt('0x' + x.toString('hex'))) };
}

/** BIP324's x-only ECDH secret, tagged with both encodings (the initiator's first). */
export function sharedSecret(ours: EphemeralKey, theirs: Uint8Array, initiating: boolean): Buffer {
  const x = elligatorSwift().decode(theirs);
  const ecdh = crypto.createECDH('secp256k1');
  ecdh.setPrivateKey(ours.secret);
  // x-only: the point with either y gives the same x of the product, so take the even one
  const shared = fixed32(ecdh.computeSecret(Buffer.concat([Buffer.of(2), x])));
  return taggedHash('bip324_ellswift_xonly_ecdh', initiating ? [ours.ellswift, theirs, shared] : [theirs, ours.ellswift, shared]);
}

function sha256(...parts: Uint8Array[]): Buffer {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** BIP340's tagged hash: SHA256(SHA256(tag) || SHA256(tag) || data). */
function taggedHash(tag: string, data: readonly Uint8Array[]): Buffer {
  const t = sha256(Buffer.from(tag, 'latin1'));
  return sha256(t, t, ...data);
}

/** A big-endian number as exactly 32 bytes (OpenSSL may drop leading zeros). */
function fixed32(b: Buffer): Buffer {
  if (b.length === 32) return b;
  const out = Buffer.alloc(32);
  b.copy(out, 32 - b.length);
  return out;
}

/** One direction's pair of ciphers: lengths (FSChaCha20) and packets (FSChaCha20Poly1305). */
export class PacketCipher {
  readonly #len: FSChaCha20;
  readonly #aead: FSChaCha20Poly1305;

  constructor(lKey: Uint8Array, pKey: Uint8Array) {
    this.#len = new FSChaCha20(lKey);
    this.#aead = new FSChaCha20Poly1305(pKey);
  }

  /**
   * The packet for `contents` (given as pieces): encrypted length, encrypted header + contents,
   * tag. A small packet comes back as one buffer (one write, one update); a large one in pieces,
   * so its payload is encrypted where it lies.
   */
  encrypt(contents: readonly Uint8Array[], aad: Uint8Array, ignore = false): Buffer[] {
    let len = 0;
    for (const p of contents) len += p.length;
    const header = ignore ? DECOY_HEADER : PLAIN_HEADER;
    const lenField = Buffer.allocUnsafe(LENGTH_FIELD_LEN);
    lenField.writeUIntLE(len, 0, LENGTH_FIELD_LEN);
    const lenCt = this.#len.crypt(lenField);
    if (len > SMALL_PACKET) return [lenCt, ...this.#aead.encrypt(aad, [header, ...contents])];
    const plain = Buffer.allocUnsafe(HEADER_LEN + len);
    plain[0] = header[0]!;
    let at = HEADER_LEN;
    for (const p of contents) {
      plain.set(p, at);
      at += p.length;
    }
    const [body, tag] = this.#aead.encrypt(aad, [plain]) as [Buffer, Buffer];
    return [Buffer.concat([lenCt, body, tag], LENGTH_FIELD_LEN + body.length + TAG_LEN)];
  }

  /** The length of the contents of the next packet, from its 3 encrypted length bytes. */
  decryptLength(field: Uint8Array): number {
    return this.#len.crypt(field).readUIntLE(0, LENGTH_FIELD_LEN);
  }

  /** header byte + contents, or null when authentication fails. */
  decrypt(body: Uint8Array, tag: Uint8Array, aad: Uint8Array): Buffer | null {
    return this.#aead.decrypt(aad, body, tag);
  }

  /** Decrypt the next packet's header byte + contents (`length` bytes) piecewise. */
  open(length: number, aad: Uint8Array): OpenPacket {
    return this.#aead.open(aad, length);
  }
}
