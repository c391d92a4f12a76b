/**
 * A seller for the buyer's tests: a real regtest litecoind (Bitcoin Core 0.21's P2P code) behind
 * the real proxy, whose chain is features + paywall on the dev backend (real BOLT11 invoices
 * signed with a local key; "paid" through the paywall's admin route POST /hooks/paywall/settle on
 * the proxy's real admin API, as a payer's payment would be). Each test file starts its own, with
 * its own key.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDevPayer, type Payer } from '../../src/client/index.js';
import { httpRequest } from '../support/p2p-client.js';
import { startLitecoind, type Litecoind } from '../support/litecoind.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { TcpRecorder } from '../support/tcp-recorder.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const mod = (p: string) => path.resolve(here, '../../hooks', p);

export interface Seller {
  node: Litecoind;
  proxy: TestProxy;
  tmp: string;
  /** with `record`: connection i's clientToTarget is what the node received */
  recorder: TcpRecorder | null;
  /** the dev payer over the admin API */
  payer(): Payer;
  /** POST /hooks/paywall/settle: the preimage (hex), as a payer learns it; `amountMsat` pays that much instead */
  settle(paymentHash: string, amountMsat?: bigint): Promise<string>;
  /** GET /hooks/paywall/grants */
  grants(): Promise<{ paymentHash: string; tier: string }[]>;
  stop(): Promise<void>;
}

export interface SellerOptions {
  /** extra paywall options over the defaults (pro: 2,000 sat for 24 h) */
  paywall?: Record<string, unknown>;
  /** blocks to mine on the node */
  blocks?: number;
  /** extra YAML for the proxy */
  yaml?: string;
  litecoindArgs?: string[];
  /** put a byte recorder between the proxy and the node (to see what the node received) */
  record?: boolean;
}

export async function startSeller(name: string, o: SellerOptions = {}): Promise<Seller> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), `bhp-seller-${name}-`));
  const keysFile = path.join(tmp, 'keys');
  writeFileSync(keysFile, `1 ${createHash('sha256').update(`${name} seller key`).digest('hex')}\n`, { mode: 0o600 });
  const node = await startLitecoind({ name: `seller-${name}`, extraArgs: o.litecoindArgs ?? [] });
  if (o.blocks) await node.generate(o.blocks);
  const paywall = {
    backend: { kind: 'dev' },
    store: { file: path.join(tmp, 'paywall.json') },
    keys: { file: keysFile },
    passes: { pro: { priceSats: 2000, duration: '24h' } },
    credit: { tier: 'metered', minSats: 100, maxSats: 100_000, msatPerUnit: 1000 },
    invoices: { rate: 100, burst: 100, perAddress: 100, perPeer: 10 },
    ...o.paywall,
  };
  const hooks = [
    { module: mod('features.js'), options: {} },
    { module: mod('paywall/index.js'), options: paywall },
  ];
  const recorder = o.record ? await TcpRecorder.start('127.0.0.1', node.p2pPort) : null;
  const proxy = await startTestProxy(recorder?.port ?? node.p2pPort, [`hooks:\n${hooks.map((h) => `  - ${JSON.stringify(h)}`).join('\n')}`, o.yaml ?? ''].join('\n'), { admin: true });
  const call = async (method: string, route: string, body?: object) => {
    const r = await httpRequest(proxy.adminPort!, method, `/hooks/paywall/${route}`, { token: proxy.adminToken, ...(body ? { body } : {}) });
    if (r.status !== 200) throw new Error(`admin ${method} ${route}: HTTP ${r.status}: ${r.text}`);
    return r.json as Record<string, unknown>;
  };
  return {
    node,
    proxy,
    tmp,
    recorder,
    payer: () => createDevPayer({ url: `http://127.0.0.1:${proxy.adminPort}`, token: proxy.adminToken }),
    settle: async (paymentHash, amountMsat) => String((await call('POST', 'settle', { paymentHash, ...(amountMsat === undefined ? {} : { amountMsat: String(amountMsat) }) })).preimage),
    grants: async () => (await call('GET', 'grants')).grants as { paymentHash: string; tier: string }[],
    async stop() {
      await proxy.close();
      await recorder?.close();
      await node.stop();
    },
  };
}
