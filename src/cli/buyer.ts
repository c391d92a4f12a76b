/**
 * The buyer's CLI commands (issue 11), for src/cli.ts to dispatch:
 *   offers HOST:PORT [--network N] [--json]
 *   buy HOST:PORT (--tier T --max-sats N | --credit SATS [--max-sats N]) [--config FILE] [--wallet FILE] [--network N] [--json]
 *   credentials [--wallet FILE] [--refresh] [--network N] [--json]
 * The payer, wallet and fee limit come from `outbound:` of the YAML given with --config (the
 * proxy's own config); --wallet overrides the wallet file. Exit codes: 0 done, 1 failed (the
 * message says what went wrong and what to do), 2 usage.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { BuyerError } from '../client/errors.js';
import { XConnection } from '../client/connection.js';
import type { Payer } from '../client/payers/types.js';
import type { GrantAnswer, Offer } from '../client/protocol.js';
import { buy, presentCredential, type BuyStep } from '../client/purchase.js';
import { Wallet } from '../client/wallet.js';
import { resolveNetwork, type Network } from '../codec/index.js';
import { outboundSchema, type OutboundConfig } from '../config.js';
import { parseHostPort } from '../config-values.js';
import { payerFromConfig } from '../outbound.js';

export const BUYER_COMMANDS = ['offers', 'buy', 'credentials'] as const;

export interface BuyerCliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** a payer instead of the configured one (embedding) */
  payer?: Payer;
}

const defaultIo: BuyerCliIo = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) };

class UsageError extends Error {}

const USAGE = `usage:
  bitcoin-hook-proxy offers HOST:PORT [--network NAME] [--json]
  bitcoin-hook-proxy buy HOST:PORT --tier TIER --max-sats N [--config proxy.yaml] [--wallet FILE] [--network NAME] [--json]
  bitcoin-hook-proxy buy HOST:PORT --credit SATS [--max-sats N] [--config proxy.yaml] [--wallet FILE] [--network NAME] [--json]
  bitcoin-hook-proxy credentials [--wallet FILE] [--refresh] [--network NAME] [--json]`;

const sat = (msat: bigint) => `${msat / 1000n}${msat % 1000n ? `.${(msat % 1000n).toString().padStart(3, '0')}` : ''} sat`;
const when = (s: bigint | number) => (Number(s) ? new Date(Number(s) * 1000).toISOString().replace('.000Z', 'Z') : '-');
const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : Buffer.isBuffer(x) ? x.toString('hex') : x), 2);

export async function runBuyerCommand(cmd: string, argv: string[], io: BuyerCliIo = defaultIo): Promise<number> {
  try {
    switch (cmd) {
      case 'offers':
        return await offers(argv, io);
      case 'buy':
        return await buyCommand(argv, io);
      case 'credentials':
        return await credentials(argv, io);
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`error: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    if (e instanceof BuyerError) {
      io.err(`error (${e.code}${e.reason ? `, ${e.reason}` : ''}): ${e.message}\n  what to do: ${e.hint}`);
      return 1;
    }
    io.err(`error: ${(e as Error).message}`);
    if (process.env.BHP_DEBUG) io.err(String((e as Error).stack));
    return 1;
  }
}

const common = { network: { type: 'string' }, json: { type: 'boolean' }, wallet: { type: 'string' }, config: { type: 'string' } } as const;

function target(positionals: string[]): { host: string; port: number } {
  const hp = positionals[0] ? parseHostPort(positionals[0]) : null;
  if (!hp || positionals.length !== 1) throw new UsageError('give the node as one HOST:PORT (or [IPv6]:PORT)');
  return hp;
}

interface Setup {
  network: Network;
  outbound: OutboundConfig | null;
  baseDir: string;
}

/** --config's network and outbound section; --network wins over the file's. */
function setup(values: { network?: string | undefined; config?: string | undefined }): Setup {
  let network = 'mainnet';
  let outbound: OutboundConfig | null = null;
  let baseDir = process.cwd();
  if (values.config) {
    const raw = (parseYaml(readFileSync(values.config, 'utf8')) ?? {}) as { network?: string; outbound?: unknown };
    baseDir = path.dirname(path.resolve(values.config));
    if (typeof raw.network === 'string') network = raw.network;
    if (raw.outbound !== undefined) {
      const r = outboundSchema.safeParse(raw.outbound);
      if (!r.success) throw new Error(`${values.config}: outbound: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      outbound = r.data;
    }
  }
  if (values.network) network = values.network;
  try {
    return { network: resolveNetwork(network), outbound, baseDir };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function walletFile(values: { wallet?: string | undefined }, s: Setup): string {
  if (values.wallet) return path.resolve(values.wallet);
  if (s.outbound && s.outbound.wallet) return path.resolve(s.baseDir, s.outbound.wallet);
  return process.env.BHP_WALLET ?? path.join(os.homedir(), '.bitcoin-hook-proxy', 'wallet.json');
}

async function offers(argv: string[], io: BuyerCliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: common, allowPositionals: true });
  const s = setup(values);
  const { host, port } = target(positionals);
  const c = await XConnection.connect({ host, port, network: s.network });
  try {
    const hello = await c.hello();
    if (!c.sells()) throw new BuyerError('no_paywall', `${host}:${port} runs ${hello.modules.map((m) => m.name).join(', ')}: no paywall`);
    const o = await c.seller.offers();
    if (values.json) {
      io.out(json({ seller: c.seller.seller, software: `${hello.software} ${hello.softwareVersion}`, network: hello.network, ...o }));
      return 0;
    }
    io.out(`${host}:${port}: ${hello.software} ${hello.softwareVersion}, ${hello.network}; invoices on Lightning ${o.lightningNetwork}, amounts in ${o.currency}`);
    const rows = o.offers.map((x) => [x.id, x.kind, x.tier, priceText(x), termsText(x)]);
    table(io, ['OFFER', 'KIND', 'TIER', 'PRICE', 'TERMS'], rows);
    if (o.paidOnly.length) io.out(`paid tiers only: ${o.paidOnly.join(', ')}`);
    if (o.freeDailyUploadBytes) io.out(`free peers share ${o.freeDailyUploadBytes} bytes of blocks per UTC day`);
    return 0;
  } finally {
    c.close();
  }
}

function priceText(o: Offer): string {
  return o.kind === 'pass' ? sat(o.priceMsat) : `${sat(o.priceMsat)} to ${sat(o.maxMsat)}`;
}

function termsText(o: Offer): string {
  if (o.kind === 'pass') return `${Number(o.durationSeconds) % 3600 === 0 ? `${Number(o.durationSeconds) / 3600} h` : `${o.durationSeconds} s`}`;
  return `${o.msatPerUnit} msat per ${o.unitBytes} bytes after ${o.freeBytes} free per connection`;
}

function table(io: BuyerCliIo, head: string[], rows: string[][]): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) io.out(r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd());
}

async function buyCommand(argv: string[], io: BuyerCliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { ...common, tier: { type: 'string' }, credit: { type: 'string' }, 'max-sats': { type: 'string' } }, allowPositionals: true });
  const s = setup(values);
  const { host, port } = target(positionals);
  const int = (v: string | undefined, what: string): bigint | null => {
    if (v === undefined) return null;
    if (!/^\d{1,16}$/.test(v)) throw new UsageError(`${what} must be a whole number of sats`);
    return BigInt(v) * 1000n;
  };
  const credit = int(values.credit, '--credit');
  const max = int(values['max-sats'], '--max-sats');
  if ((credit === null) === (values.tier === undefined)) throw new UsageError('give --tier TIER (with --max-sats) or --credit SATS');
  if (values.tier !== undefined && max === null) throw new UsageError('--tier needs --max-sats: the most you will pay');
  const payer = io.payer ?? (s.outbound?.payer ? payerFromConfig(s.outbound.payer, s.baseDir) : null);
  if (!payer) throw new UsageError('no payer: give --config with an outbound.payer section (lnd, cln, lnbits, phoenixd or dev)');
  const wallet = Wallet.open(walletFile(values, s));
  const c = await XConnection.connect({ host, port, network: s.network });
  try {
    if (!c.sells()) throw new BuyerError('no_paywall', `${host}:${port} sells nothing (no x:offers in its feature)`);
    const o = await c.seller.offers();
    const offer = credit !== null ? o.offers.find((x) => x.kind === 'credit') : o.offers.find((x) => x.tier === values.tier || x.id === values.tier);
    if (!offer) throw new BuyerError('unknown_offer', credit !== null ? 'this seller offers no credit' : `this seller offers no tier "${values.tier}" (it has: ${o.offers.map((x) => x.tier).join(', ')})`);
    const progress = (step: BuyStep, d: Record<string, unknown>) => {
      if (values.json) return;
      const lines: Record<BuyStep, () => string> = {
        claiming_earlier: () => `claiming an earlier payment (${String(d.paymentHash)}) instead of paying again`,
        invoice: () => `invoice: ${sat(d.amountMsat as bigint)}, payment hash ${String(d.paymentHash)}, expires ${when(d.expiresAt as number)}`,
        paying: () => `paying with ${String(d.payer)} (fees at most ${sat(d.maxFeeMsat as bigint)})…`,
        paid: () => 'paid',
        claimed: () => `claimed: tier ${String(d.tier)}${d.kind === 'pass' ? ` until ${when(d.expiresAt as bigint)}` : `, balance ${sat(d.balanceMsat as bigint)}`}`,
      };
      io.out(lines[step]());
    };
    const maxFeeMsat = s.outbound ? BigInt(s.outbound.maxFeeSats) * 1000n : undefined;
    const g: GrantAnswer = await buy(c.seller, {
      offerId: offer.id,
      ...(credit !== null ? { amountMsat: credit } : {}),
      maxMsat: max ?? credit ?? 0n,
      ...(maxFeeMsat !== undefined ? { maxFeeMsat } : {}),
      payer,
      wallet,
      offers: o,
      progress,
    });
    if (values.json) io.out(json({ seller: c.seller.seller, kind: g.kind, tier: g.tier, expiresAt: g.expiresAt, balanceMsat: g.balanceMsat, redelivered: (g.flags & 1) !== 0, wallet: wallet.file }));
    else io.out(`credential stored in ${wallet.file}`);
    return 0;
  } finally {
    c.close();
  }
}

async function credentials(argv: string[], io: BuyerCliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { ...common, refresh: { type: 'boolean' } }, allowPositionals: true });
  if (positionals.length) throw new UsageError('credentials takes no address');
  const s = setup(values);
  const wallet = Wallet.open(walletFile(values, s));
  const now = Math.floor(Date.now() / 1000);
  const rows: { seller: string; kind: string; tier: string; expiresAt: number; balanceMsat: string | null; state: string }[] = [];
  for (const [seller, list] of Object.entries(wallet.credentials())) {
    let live: { state: string; balanceMsat: bigint | null } | null = null;
    if (values.refresh) live = await refresh(seller, wallet, s.network);
    for (const c of list) {
      const state = c.kind === 'pass' && c.expiresAt <= now ? 'expired' : (live?.state ?? 'stored');
      rows.push({ seller, kind: c.kind, tier: c.tier, expiresAt: c.expiresAt, balanceMsat: live?.balanceMsat?.toString() ?? c.balanceMsat ?? null, state });
    }
  }
  const unclaimed = wallet.purchases().filter((p) => p.state === 'paid' || p.state === 'paying');
  if (values.json) {
    io.out(json({ wallet: wallet.file, credentials: rows, unclaimed }));
    return 0;
  }
  io.out(`wallet ${wallet.file}`);
  if (!rows.length) io.out('no credentials');
  else table(io, ['SELLER', 'KIND', 'TIER', 'EXPIRES', 'BALANCE', 'STATE'], rows.map((r) => [r.seller, r.kind, r.tier, when(r.expiresAt), r.balanceMsat === null ? '-' : sat(BigInt(r.balanceMsat)), r.state]));
  for (const p of unclaimed) io.out(`unclaimed payment to ${p.seller} (${p.tier}, ${sat(BigInt(p.amountMsat))}): run \`buy ${p.seller} …\` to claim it`);
  return 0;
}

/** Present the credential to its seller and read the balance now. */
async function refresh(seller: string, wallet: Wallet, network: Network): Promise<{ state: string; balanceMsat: bigint | null }> {
  const hp = parseHostPort(seller);
  if (!hp) return { state: 'unreachable', balanceMsat: null };
  let c: XConnection | null = null;
  try {
    c = await XConnection.connect({ host: hp.host, port: hp.port, network, timeoutMs: 10_000 });
    const g = await presentCredential(c.seller, wallet);
    if (!g) return { state: 'refused', balanceMsat: null };
    const b = await c.seller.balance();
    return { state: 'valid', balanceMsat: b.kind === 'credit' ? b.balanceMsat : null };
  } catch (e) {
    return { state: e instanceof BuyerError ? e.code : 'error', balanceMsat: null };
  } finally {
    c?.close();
  }
}
