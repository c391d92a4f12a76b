/**
 * The buyer's CLI commands as a user types them, each run as its own process (runBuyerCommand,
 * which src/cli.ts dispatches to), against a real seller: litecoind 0.21 behind the real proxy
 * with the paywall on the dev backend. The dev payer pays through the seller proxy's real admin
 * API (POST /hooks/paywall/settle with the bearer token), as the demo's banner tells a user to.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { litecoindSkipReason } from '../support/litecoind.js';
import { startSeller, type Seller } from './seller.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const buyerModule = path.resolve(here, '../../src/cli/buyer.js');
const skip = litecoindSkipReason();
let seller: Seller;
let config: string;
let wallet: string;

function run(cmd: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const script = `const m = await import(${JSON.stringify(buyerModule)}); process.exitCode = await m.runBuyerCommand(process.argv[1], process.argv.slice(2));`;
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

before(async () => {
  if (skip) return;
  seller = await startSeller('cli');
  wallet = path.join(seller.tmp, 'cli-wallet.json');
  config = path.join(seller.tmp, 'buyer.yaml');
  writeFileSync(config, `network: regtest\nbackend: 127.0.0.1:1\noutbound:\n  wallet: ${wallet}\n  payer: { kind: dev, url: "http://127.0.0.1:${seller.proxy.adminPort}", token: "${seller.proxy.adminToken}" }\n`);
});

after(async () => {
  await seller?.stop();
});

test('offers: a table, and --json', { skip, timeout: 60_000 }, async () => {
  const t = await run('offers', `127.0.0.1:${seller.proxy.port}`, '--network', 'regtest');
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /regtest/);
  assert.match(t.out, /^pro\s+pass\s+pro\s+2000 sat\s+24 h$/m);
  assert.match(t.out, /^credit\s+credit\s+metered\s+100 sat to 100000 sat/m);
  const j = await run('offers', `127.0.0.1:${seller.proxy.port}`, '--network', 'regtest', '--json');
  assert.equal(j.code, 0, j.err);
  const o = JSON.parse(j.out) as { lightningNetwork: string; offers: { id: string; priceMsat: string }[] };
  assert.equal(o.lightningNetwork, 'regtest');
  assert.equal(o.offers.find((x) => x.id === 'pro')?.priceMsat, '2000000');
});

test('buy: above the limit refused with what to do; within it: progress, credential stored 0600', { skip, timeout: 60_000 }, async () => {
  const seller_ = `127.0.0.1:${seller.proxy.port}`;
  const low = await run('buy', seller_, '--tier', 'pro', '--max-sats', '1999', '--config', config);
  assert.equal(low.code, 1);
  assert.match(low.err, /price_above_limit/);
  assert.match(low.err, /what to do: raise the limit/);
  assert.equal((await seller.grants()).length, 0, 'nothing bought');
  assert.equal(existsSync(wallet), false, 'nothing recorded');
  const ok = await run('buy', seller_, '--tier', 'pro', '--max-sats', '2000', '--config', config);
  assert.equal(ok.code, 0, ok.err);
  const lines = ok.out.trim().split('\n');
  assert.match(lines[0]!, /^invoice: 2000 sat, payment hash [0-9a-f]{64}, expires /);
  assert.match(lines[1]!, /^paying with dev/);
  assert.equal(lines[2], 'paid');
  assert.match(lines[3]!, /^claimed: tier pro until \d{4}-/);
  assert.equal((await seller.grants()).length, 1);
  assert.equal(statSync(wallet).mode & 0o777, 0o600);
  const credit = await run('buy', seller_, '--credit', '500', '--config', config, '--json');
  assert.equal(credit.code, 0, credit.err);
  assert.deepEqual(((j) => [j.kind, j.tier, j.balanceMsat])(JSON.parse(credit.out)), ['credit', 'metered', '500000']);
});

test('credentials: listed with expiry and balance; --refresh asks the seller', { skip, timeout: 60_000 }, async () => {
  const l = await run('credentials', '--wallet', wallet);
  assert.equal(l.code, 0, l.err);
  assert.match(l.out, new RegExp(`127\\.0\\.0\\.1:${seller.proxy.port}\\s+pass\\s+pro\\s+\\d{4}-\\S+\\s+-\\s+stored`));
  assert.match(l.out, /credit\s+metered\s+-\s+500 sat\s+stored/);
  const r = await run('credentials', '--wallet', wallet, '--refresh', '--network', 'regtest', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { credentials: { tier: string; state: string }[] };
  assert.ok(j.credentials.length >= 2);
  assert.ok(j.credentials.every((c) => c.state === 'valid'), r.out);
});

test('errors: unreachable, not a proxy, usage', { skip, timeout: 60_000 }, async () => {
  const u = await run('offers', '127.0.0.1:1', '--network', 'regtest');
  assert.equal(u.code, 1);
  assert.match(u.err, /error \(unreachable\).*\n  what to do: check the address/);
  const n = await run('offers', `127.0.0.1:${seller.node.p2pPort}`, '--network', 'regtest');
  assert.equal(n.code, 1);
  assert.match(n.err, /no_x_feature/);
  const usage = await run('buy', `127.0.0.1:${seller.proxy.port}`, '--tier', 'pro');
  assert.equal(usage.code, 2);
  assert.match(usage.err, /--tier needs --max-sats/);
  const noPayer = await run('buy', `127.0.0.1:${seller.proxy.port}`, '--tier', 'pro', '--max-sats', '5000', '--network', 'regtest', '--wallet', wallet);
  assert.equal(noPayer.code, 2);
  assert.match(noPayer.err, /no payer/);
});

test('an IPv6 seller: bought at [::1]:PORT, its credential is kept under that address and --refresh reaches it', { skip, timeout: 60_000 }, async () => {
  // the wallet keyed sellers as host:port with the brackets stripped ("::1:PORT"): --refresh could
  // not parse that back (always "unreachable"), and the proxy's outbound buyer, which names the
  // same seller "[::1]:PORT" as its SOCKS front does, never found the credential and bought again
  const relay = net.createServer((c) => {
    const up = net.connect(seller.proxy.port, '127.0.0.1');
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '::1', resolve));
  const seller6 = `[::1]:${(relay.address() as net.AddressInfo).port}`;
  const w6 = path.join(seller.tmp, 'cli-wallet-v6.json');
  try {
    const b = await run('buy', seller6, '--tier', 'pro', '--max-sats', '2000', '--config', config, '--wallet', w6);
    assert.equal(b.code, 0, b.err);
    const r = await run('credentials', '--wallet', w6, '--refresh', '--network', 'regtest', '--json');
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as { credentials: { seller: string; state: string }[] };
    assert.deepEqual(j.credentials.map((c) => [c.seller, c.state]), [[seller6, 'valid']]);
  } finally {
    relay.close();
  }
});
