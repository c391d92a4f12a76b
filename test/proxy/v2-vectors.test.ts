/**
 * BIP324's published test vectors (test/fixtures/bip324, copied unchanged from the BIP): every
 * row of the ElligatorSwift decoding, the xswiftec inverse and the packet encoding files, run
 * against what the proxy uses: @scure/btc-signer's elligatorSwift (over @noble/curves) and our
 * FSChaCha20 / FSChaCha20Poly1305 on node:crypto; the x-only ECDH is also recomputed with
 * OpenSSL's. No stand-ins: the expected values are the BIP's.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createECDH } from 'node:crypto';
import { elligatorSwift } from '@scure/btc-signer/p2p.js';
import { NETWORKS } from '../../src/codec/index.js';
import { PacketCipher, deriveKeys, newEphemeralKey, sharedSecret } from '../../src/proxy/transport/v2/cipher.js';

const DIR = fileURLToPath(new URL('../../../test/fixtures/bip324/', import.meta.url));

function csv(name: string): Record<string, string>[] {
  const [head, ...rows] = readFileSync(DIR + name, 'utf8').trim().split('\n');
  const cols = head!.split(',');
  return rows.map((r) => {
    const cells = r.split(',');
    return Object.fromEntries(cols.map((c, i) => [c, cells[i] ?? '']));
  });
}

const hex = (s: string) => Buffer.from(s, 'hex');
const big = (s: string) => BigInt('0x' + s);

describe('BIP324 ellswift_decode_test_vectors.csv', () => {
  const rows = csv('ellswift_decode_test_vectors.csv');
  it(`has the BIP's ${rows.length} rows`, () => assert.equal(rows.length, 76));
  for (const [i, r] of rows.entries()) {
    it(`row ${i}: ${r.comment}`, () => {
      assert.equal(Buffer.from(elligatorSwift.decode(hex(r.ellswift!))).toString('hex'), r.x);
    });
  }
});

describe('BIP324 xswiftec_inv_test_vectors.csv', () => {
  const rows = csv('xswiftec_inv_test_vectors.csv');
  it(`has the BIP's ${rows.length} rows`, () => assert.equal(rows.length, 32));
  for (const [i, r] of rows.entries()) {
    it(`row ${i}: ${(r.comment ?? "").slice(0, 60)}`, () => {
      for (let c = 0; c < 8; c++) {
        const want = r[`case${c}_t`]!;
        const got = elligatorSwift._inv(big(r.x!), big(r.u!), c);
        if (want === '') assert.equal(got, undefined, `case ${c} must have no inverse`);
        else {
          assert.equal(typeof got, 'bigint', `case ${c} must have an inverse`);
          assert.equal((got as bigint).toString(16).padStart(64, '0'), want, `case ${c}`);
          // and decoding (u, t) gives x back
          assert.equal(Buffer.from(elligatorSwift.decode(hex(r.u! + want))).toString('hex'), r.x);
        }
      }
    });
  }
});

describe('BIP324 packet_encoding_test_vectors.csv (handshake secrets, packets, rekeying)', () => {
  const rows = csv('packet_encoding_test_vectors.csv');
  it(`has the BIP's ${rows.length} rows`, () => assert.equal(rows.length, 7));
  for (const r of rows) {
    const initiating = r.in_initiating === '1';
    it(`packet ${r.in_idx} (${initiating ? 'initiator' : 'responder'}, ${r.in_contents!.length / 2} bytes x ${r.in_multiply}, ignore=${r.in_ignore})`, () => {
      const priv = hex(r.in_priv_ours!);
      const ours = { secret: priv, ellswift: hex(r.in_ellswift_ours!) };
      const theirs = hex(r.in_ellswift_theirs!);
      // our x and the shared x, also from OpenSSL (node:crypto), independently of the library
      const ecdh = createECDH('secp256k1');
      ecdh.setPrivateKey(priv);
      assert.equal(ecdh.getPublicKey(null, 'compressed').subarray(1).toString('hex'), r.mid_x_ours);
      assert.equal(ecdh.computeSecret(Buffer.concat([Buffer.of(2), hex(r.mid_x_theirs!)])).toString('hex'), r.mid_x_shared);
      assert.equal(Buffer.from(elligatorSwift.decode(ours.ellswift)).toString('hex'), r.mid_x_ours);
      assert.equal(Buffer.from(elligatorSwift.decode(theirs)).toString('hex'), r.mid_x_theirs);
      assert.equal(Buffer.from(elligatorSwift.getSharedSecret(priv, theirs)).toString('hex'), r.mid_x_shared);
      const secret = sharedSecret(ours, theirs, initiating);
      assert.equal(Buffer.from(secret).toString('hex'), r.mid_shared_secret);

      const k = deriveKeys(secret, NETWORKS.mainnet.magic); // the vectors are for mainnet
      assert.equal(k.initiatorL.toString('hex'), r.mid_initiator_l);
      assert.equal(k.initiatorP.toString('hex'), r.mid_initiator_p);
      assert.equal(k.responderL.toString('hex'), r.mid_responder_l);
      assert.equal(k.responderP.toString('hex'), r.mid_responder_p);
      assert.equal((initiating ? k.initiatorTerminator : k.responderTerminator).toString('hex'), r.mid_send_garbage_terminator);
      assert.equal((initiating ? k.responderTerminator : k.initiatorTerminator).toString('hex'), r.mid_recv_garbage_terminator);
      assert.equal(k.sessionId.toString('hex'), r.out_session_id);

      const [l, p] = initiating ? [k.initiatorL, k.initiatorP] : [k.responderL, k.responderP];
      const send = new PacketCipher(l, p);
      const recv = new PacketCipher(l, p);
      const idx = Number(r.in_idx);
      for (let i = 0; i < idx; i++) {
        const dummy = Buffer.concat(send.encrypt([], Buffer.alloc(0), true));
        assert.equal(recv.decryptLength(dummy.subarray(0, 3)), 0);
        assert.deepEqual(recv.decrypt(dummy.subarray(3, 4), dummy.subarray(4), Buffer.alloc(0)), Buffer.of(0x80));
      }
      const contents = Buffer.concat(Array.from({ length: Number(r.in_multiply) }, () => hex(r.in_contents!)));
      const aad = hex(r.in_aad!);
      const ignore = r.in_ignore === '1';
      const packet = Buffer.concat(send.encrypt([contents], aad, ignore));
      if (r.out_ciphertext) assert.equal(packet.toString('hex'), r.out_ciphertext);
      if (r.out_ciphertext_endswith) assert.ok(packet.toString('hex').endsWith(r.out_ciphertext_endswith), 'ciphertext tail');
      // the receiving side gets the contents back, and a flipped bit fails authentication
      assert.equal(recv.decryptLength(packet.subarray(0, 3)), contents.length);
      const plain = recv.decrypt(packet.subarray(3, packet.length - 16), packet.subarray(packet.length - 16), aad);
      assert.ok(plain);
      assert.equal(plain[0], ignore ? 0x80 : 0);
      assert.ok(plain.subarray(1).equals(contents));
    });
  }
});

describe('our ephemeral keys', () => {
  it('encode the x of their secret (ElligatorSwift round trip), and both sides derive one secret', () => {
    for (let i = 0; i < 20; i++) {
      const a = newEphemeralKey();
      const b = newEphemeralKey();
      const ecdh = createECDH('secp256k1');
      ecdh.setPrivateKey(Buffer.from(a.secret));
      assert.equal(Buffer.from(elligatorSwift.decode(a.ellswift)).toString('hex'), ecdh.getPublicKey(null, 'compressed').subarray(1).toString('hex'));
      assert.ok(sharedSecret(a, b.ellswift, true).equals(sharedSecret(b, a.ellswift, false)));
      assert.ok(!sharedSecret(a, b.ellswift, true).equals(sharedSecret(b, a.ellswift, true)), 'the roles are part of the secret');
    }
  });
});
