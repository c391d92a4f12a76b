/**
 * dev: a Lightning backend for demos and tests, with no Lightning node. It issues real BOLT11
 * invoices (`lnbcrt…` on regtest) signed with a local secp256k1 key by @atomiqlabs/bolt11, keeps
 * them in memory, and settles one when told to (`settle`, or `pay` with the BOLT11): that is
 * where a real payer would route a payment and learn the preimage. Never for real money: anyone
 * who can reach the settle call gets paid service for free.
 */
import { createECDH, createHash, randomBytes } from 'node:crypto';
import bolt11 from '@atomiqlabs/bolt11';
import { BackendError, checkHash, type CreatedInvoice, type InvoiceStatus, type LightningBackend } from './types.js';

/** BOLT11 human-readable prefixes per network (BOLT #11: lnbc, lntb, lntbs, lnbcrt). */
const BECH32: Record<string, string> = { bitcoin: 'bc', testnet: 'tb', signet: 'tbs', regtest: 'bcrt' };

export interface DevOptions {
  /** bitcoin, testnet, signet or regtest */
  network: string;
  /** 32-byte private key in hex (a random one per process when absent) */
  privateKeyHex?: string;
}

interface DevInvoice {
  amountMsat: bigint;
  expiresAt: number;
  preimage: Buffer;
  paidMsat: bigint | null;
}

export interface DevBackend extends LightningBackend {
  /** the node public key that signs the invoices (33 bytes, compressed, hex) */
  readonly nodeKey: string;
  /**
   * Mark the invoice paid (with its amount, or `amountMsat`) and return its preimage in hex,
   * as a payer learns it. Throws for an unknown or expired invoice.
   */
  settle(paymentHash: string, amountMsat?: bigint): string;
  /** settle the invoice this BOLT11 names (as a payer would) and return the preimage */
  pay(paymentRequest: string): string;
}

export function createDevBackend(o: DevOptions): DevBackend {
  const name = 'dev';
  const hrp = BECH32[o.network];
  if (!hrp) throw new Error(`dev backend: unknown network "${o.network}" (bitcoin, testnet, signet, regtest)`);
  const network = { bech32: hrp, pubKeyHash: 0x6f, scriptHash: 0xc4, validWitnessVersions: [0, 1], wif: 0xef };
  const key = o.privateKeyHex ? Buffer.from(o.privateKeyHex, 'hex') : randomBytes(32);
  const ecdh = createECDH('secp256k1');
  ecdh.setPrivateKey(key); // throws on an invalid key
  const nodeKey = ecdh.getPublicKey('hex', 'compressed');
  const invoices = new Map<string, DevInvoice>();

  const settle = (paymentHash: string, amountMsat?: bigint): string => {
    const inv = invoices.get(checkHash(name, paymentHash));
    if (!inv) throw new BackendError(name, 'rejected', `no invoice ${paymentHash}`);
    if (inv.expiresAt * 1000 < Date.now()) throw new BackendError(name, 'rejected', `invoice ${paymentHash} expired`);
    inv.paidMsat ??= amountMsat ?? inv.amountMsat;
    return inv.preimage.toString('hex');
  };

  return {
    kind: name,
    network: o.network,
    nodeKey,
    async createInvoice(amountMsat, memo, expirySeconds): Promise<CreatedInvoice> {
      const preimage = randomBytes(32);
      const paymentHash = createHash('sha256').update(preimage).digest('hex');
      const timestamp = Math.floor(Date.now() / 1000);
      const unsigned = bolt11.encode({
        network,
        millisatoshis: amountMsat.toString(),
        timestamp,
        tags: [
          { tagName: 'payment_hash', data: paymentHash },
          { tagName: 'payment_secret', data: randomBytes(32).toString('hex') },
          { tagName: 'description', data: memo },
          { tagName: 'expire_time', data: expirySeconds },
          // the payee key tag lets any decoder check the signature against it
          { tagName: 'payee_node_key', data: nodeKey },
        ],
      });
      const signed = bolt11.sign(unsigned, key);
      if (!signed.paymentRequest) throw new BackendError(name, 'protocol', 'bolt11 signing produced no payment request');
      invoices.set(paymentHash, { amountMsat, expiresAt: timestamp + expirySeconds, preimage, paidMsat: null });
      return { paymentHash, bolt11: signed.paymentRequest, expiresAt: timestamp + expirySeconds };
    },
    async lookupInvoice(paymentHash): Promise<InvoiceStatus> {
      const inv = invoices.get(checkHash(name, paymentHash));
      if (!inv) return { state: 'unknown', amountPaidMsat: 0n };
      if (inv.paidMsat !== null) return { state: 'settled', amountPaidMsat: inv.paidMsat };
      return { state: inv.expiresAt * 1000 < Date.now() ? 'expired' : 'open', amountPaidMsat: 0n };
    },
    settle,
    pay(paymentRequest) {
      const hash = bolt11.decode(paymentRequest, network).tagsObject.payment_hash;
      return settle(String(hash));
    },
  };
}
