/**
 * Child process for the kill -9 test (kill.test.ts): runs the paywall hook through the real chain
 * runner with the file store, buys a pass from the dev backend, and claims it. Its store reports
 * each durable claim on stdout and then never returns, so the grant is never sent: the parent
 * SIGKILLs this process right there, between settle and grant.
 * argv: storeFile keysFile
 */
import { createHookHarness } from '../../../src/hooks/testing.js';
import { X_FEATURE_ID } from '../../../src/hooks/index.js';
import { createPaywallHook } from '../../../hooks/paywall/index.js';
import * as P from '../../../hooks/paywall/protocol.js';
import { FileStore } from '../../../hooks/paywall/store.js';

const [storeFile, keysFile] = process.argv.slice(2) as [string, string];
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** The file store, except that a claim, once durable, is reported and never returns. */
class HoldingStore extends FileStore {
  override async claim(g: Parameters<FileStore['claim']>[0]): ReturnType<FileStore['claim']> {
    const r = await super.claim(g);
    say({ claimed: r.grant.tokenId, first: r.first });
    return new Promise<never>(() => {}); // hold here until SIGKILL
  }
}

// node --test runs every file under test/: do nothing unless started by kill.test.ts
if (!process.env.BHP_PAYWALL_KILL_CHILD) process.exit(0);
const hook = createPaywallHook({ openStore: (file) => new HoldingStore(file) });
const h = await createHookHarness([{ module: hook, options: { backend: { kind: 'dev' }, store: { file: storeFile }, keys: { file: keysFile }, passes: { pro: { priceSats: 2000, duration: '24h' } } } }]);
const peer = h.peer({ features: new Map([[X_FEATURE_ID, Buffer.alloc(0)]]) });
setInterval(() => {
  if (h.sent.some((s) => s.message.command === P.CMD.grant)) say({ granted: true });
}, 5);
await h.deliver(peer, 'inbound', P.CMD.invoice, P.encodeInvoiceRequest({ nonce: 1n, offerId: 'pro', amountMsat: 0n }));
while (!h.sent.some((s) => s.message.command === P.CMD.invoice)) await new Promise((r) => setTimeout(r, 5));
const inv = P.decodeInvoiceAnswer(Buffer.from(h.sent.find((s) => s.message.command === P.CMD.invoice)!.message.payload!));
const { preimage } = (await h.admin('paywall', 'POST settle', { paymentHash: inv.paymentHash.toString('hex') })) as { preimage: string };
say({ hash: inv.paymentHash.toString('hex'), token: inv.claimToken.toString('hex'), preimage });
await h.deliver(peer, 'inbound', P.CMD.claim, P.encodeClaim({ nonce: 2n, paymentHash: inv.paymentHash, claimToken: inv.claimToken, preimage: Buffer.from(preimage, 'hex') }));
