/**
 * paywall: peers buy better service over Lightning (docs/hooks/paywall.md for operators,
 * docs/x-protocol.md §4.3 for the messages).
 *
 *   - x:offers lists time passes (a tier for a duration) and metered credit (msat per unit of bytes relayed
 *     beyond a free allowance). x:invoice asks the Lightning backend for a BOLT11 invoice, bounded
 *     per connection, per address and in total, and rate-limited per address.
 *   - x:claim proves payment: the invoice was issued by this proxy to the claimant (a claim token
 *     only it saw; every routing hop learns the preimage, so the preimage alone proves nothing),
 *     sha256(preimage) is the payment hash, and the backend reports it settled for at least the
 *     price. One grant per payment hash, ever: the grant is on disk before it is sent, and a
 *     repeated claim gets the same grant again, never a second one.
 *   - A grant sets documented peer.state keys (`tier`, `paywall.paid`, `paywall.expiresAt`) that
 *     rate-limit and other hooks read, and carries an HMAC credential; x:auth on a later
 *     connection restores the tier without paying again.
 *   - Relay-path work is synchronous and local: metering debits a credit balance per unit (1 MiB by default) of the
 *     metered commands, paid-only commands are refused to free peers, and when the daily free
 *     upload budget is spent free peers' block requests are answered with notfound.
 *   - No Lightning call holds any message: requests that need the backend or the store are
 *     answered later with ctx.send. A backend that is down gives x:refuse backend_unavailable and
 *     one log line per outage.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import {
  codec,
  defineHook,
  HOOK_API_VERSION,
  HookAdminError,
  X_FEATURE_ID,
  type HookContext,
  type HookCounter,
  type HookGauge,
  type HookModule,
  type HookPeer,
  type HookResult,
  type OutgoingMessage,
  StoreUnavailableError,
} from '../../src/hooks/index.js';
import { actionSchema, applyAction, commandName, positiveDurationSeconds as duration } from '../lib/common.js';
import { BackendError, createBackend, type BackendConfig, type DevBackend, type LightningBackend } from './backends/index.js';
import { loadKeyring, signCredential, verifyCredential, type CredentialProblem, type Keyring } from './credentials.js';
import { paywallProcessState, type PaywallProcessState } from './process-state.js';
import * as P from './protocol.js';
import { SharedPaywallStore } from './shared-store.js';
import { openFileStore, type GrantKind, type GrantRecord, type PaywallStore } from './store.js';

const NAME = 'paywall';
const MiB = 1 << 20;

/** peer.state keys other hooks may read (docs/hooks/paywall.md) */
export const STATE_PAID = 'paywall.paid';
export const STATE_EXPIRES = 'paywall.expiresAt';
const STATE_SESSION = 'paywall.session';

const tierName = z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, 'a tier name is 1 to 32 characters of A-Z a-z 0-9 _ . -');
const sats = z.number().int().positive().max(2_100_000_000_000_000);
const url = z.string().regex(/^https?:\/\/\S+$/, 'an http:// or https:// URL');
const file = z.string().min(1);

const backendSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('dev'), privateKeyHex: z.string().regex(/^[0-9a-fA-F]{64}$/).optional() }),
  z.strictObject({ kind: z.literal('lnd'), url, macaroonFile: file, tlsCertFile: file.optional() }),
  z.strictObject({ kind: z.literal('cln'), url, runeFile: file, tlsCertFile: file.optional() }),
  z.strictObject({ kind: z.literal('lnbits'), url, apiKeyFile: file, tlsCertFile: file.optional() }),
  z.strictObject({ kind: z.literal('phoenixd'), url, passwordFile: file, tlsCertFile: file.optional() }),
]);

/** commands whose bytes are metered for credit peers by default: what carries blocks, transactions and filters */
const METERED = ['block', 'cmpctblock', 'blocktxn', 'tx', 'merkleblock', 'headers', 'cfilter', 'cfheaders', 'cfcheckpt'];
/** what the daily free upload budget counts: blocks served */
const UPLOAD = ['block', 'cmpctblock', 'blocktxn'];

const Options = z
  .strictObject({
    backend: backendSchema,
    /** a backend answer slower than this is a refusal (backend_unavailable) */
    backendTimeout: duration.default(10),
    /** BOLT11 network of the invoices; default from the proxy's network */
    lightningNetwork: z.enum(['bitcoin', 'testnet', 'signet', 'regtest']).optional(),
    store: z.strictObject({ file }),
    /** credential keys: a file or an environment variable of `KEY_ID HEX` lines, never the YAML */
    keys: z.strictObject({ file: file.optional(), env: z.string().min(1).optional() }).refine((k) => Boolean(k.file) !== Boolean(k.env), 'set exactly one of keys.file and keys.env'),
    tierKey: z.string().min(1).default('tier'),
    /** time passes: offer id = tier name */
    passes: z.record(tierName, z.strictObject({ priceSats: sats, duration })).default({}),
    credit: z
      .strictObject({
        tier: tierName.default('metered'),
        minSats: sats.default(100),
        maxSats: sats.default(1_000_000),
        /** msat debited per whole unit of metered bytes beyond freeBytes */
        msatPerUnit: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
        /** the unit: 1 MiB by default */
        unitBytes: z.number().int().min(1).default(MiB),
        /** bytes per connection relayed before charging starts */
        freeBytes: z.number().int().min(0).default(0),
        commands: z.array(commandName).default(METERED),
      })
      .optional(),
    invoices: z
      .strictObject({
        expiry: duration.default(600),
        perPeer: z.number().int().min(1).default(3),
        perAddress: z.number().int().min(1).default(10),
        total: z.number().int().min(1).default(10_000),
        /** new invoices per second per address, and the burst */
        rate: z.number().positive().default(0.2),
        burst: z.number().int().min(1).default(5),
      })
      .prefault({}),
    /** inbound commands refused to peers without a paid tier */
    paidOnly: z.array(commandName).default([]),
    paidOnlyAction: actionSchema.default('drop'),
    /** blocks served to free peers per UTC day, all together; when spent their block requests get notfound */
    freeUpload: z.strictObject({ dailyBytes: z.number().int().positive() }).optional(),
    /** x: requests of one connection waiting for the backend or the store */
    maxPendingPerPeer: z.number().int().min(1).default(2),
    /** connections one credential marks as priority (never evicted, may hold a reserved slot); more get its tier but not that */
    priorityPerCredential: z.number().int().min(1).default(4),
  })
  .superRefine((o, ctx) => {
    if (Object.keys(o.passes).length === 0 && !o.credit) ctx.addIssue({ code: 'custom', path: ['passes'], message: 'offer at least one pass or credit' });
    if (o.credit && o.passes[o.credit.tier]) ctx.addIssue({ code: 'custom', path: ['credit', 'tier'], message: `tier "${o.credit.tier}" is also a pass` });
    if (o.credit && o.credit.minSats > o.credit.maxSats) ctx.addIssue({ code: 'custom', path: ['credit', 'minSats'], message: 'minSats is above maxSats' });
  });
export type PaywallOptions = z.output<typeof Options>;

const hex = (n: number, what: string) => z.string().regex(new RegExp(`^[0-9a-f]{${n}}$`), `${what} is ${n} lowercase hex digits`);
const revokeInput = z.strictObject({ tokenId: hex(32, 'a token id') });
const settleInput = z
  .strictObject({
    paymentHash: hex(64, 'a payment hash').optional(),
    bolt11: z.string().min(1).max(4096).optional(),
    /** with paymentHash: pay this much instead of the invoice's amount (an underpayment, in tests) */
    amountMsat: z.union([z.string().regex(/^[0-9]{1,19}$/, 'a decimal number of millisatoshis'), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]).optional(),
  })
  .refine((q) => (q.paymentHash === undefined) !== (q.bolt11 === undefined), 'give paymentHash or bolt11, one of them')
  .refine((q) => q.bolt11 === undefined || q.amountMsat === undefined, 'amountMsat goes with paymentHash (a BOLT11 is paid at its amount)');

interface Session {
  kind: 'free' | GrantKind;
  tier: string;
  tokenId: string;
  /** pass: unix seconds */
  expiresAt: number;
  /** credit: the balance as this connection sees it */
  balanceMsat: bigint;
  /** bytes of metered commands relayed on credit since the connection's first grant (kept across grants: presenting a credential again must not restart the free bytes or a partial unit) */
  meteredBytes: number;
  chargedUnits: number;
  /** invoices issued to this connection: hash → expiry (unix s) */
  open: Map<string, number>;
  pending: number;
}

const LN_NETWORK: Record<string, string> = { mainnet: 'bitcoin', testnet3: 'testnet', testnet4: 'testnet', signet: 'signet', regtest: 'regtest' };

export interface PaywallDeps {
  /** the store for a file (tests wrap it); default the one FileStore of that file (openFileStore) */
  openStore?: (file: string) => PaywallStore;
  env?: NodeJS.ProcessEnv;
  /** seconds after its expiry an unclaimed invoice is asked about (default 60; tests use 0) */
  settleMarginS?: number;
  /** seconds after its expiry an invoice the backend still calls open is asked once more (default 600) */
  openGraceS?: number;
}

const nowS = () => Math.floor(Date.now() / 1000);
/** an expired unclaimed invoice is asked about this long after it expired (a payment racing the expiry has landed by then) */
const SETTLE_MARGIN = 60;
/**
 * A backend may still call an invoice open past our expiry: its clock behind ours (CLN sets the
 * expiry by its own), or have no expired state at all (phoenixd). It is asked once more this long
 * after the expiry, then forgotten as unpaid if still open.
 */
const OPEN_GRACE = 600;
/** the key of a slot held for an invoice being created (not a payment hash) */
const PLACEHOLDER = 'pending-';
/** shared-store revocation questions in flight at once (the fleet check every sweep) */
const REVOCATION_QUERIES = 32;
/** backend lookups of expired invoices per sweep (every 5 s) */
const CHECKS_PER_SWEEP = 200;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();
const CREDENTIAL_REFUSAL: Record<CredentialProblem, P.RefuseReason> = {
  malformed: 'credential_invalid',
  bad_mac: 'credential_invalid',
  unknown_key: 'credential_unknown_key',
  expired: 'credential_expired',
};

export function createPaywallHook(deps: PaywallDeps = {}): HookModule<PaywallOptions> {
  const SETTLE_MARGIN_S = deps.settleMarginS ?? SETTLE_MARGIN;
  const OPEN_GRACE_S = deps.openGraceS ?? OPEN_GRACE;
  let o: PaywallOptions;
  let hookCtx: HookContext;
  let backend: LightningBackend;
  let store: PaywallStore;
  let ring: Keyring;
  let lnNetwork: string;
  let offers: P.Offer[];
  let meterSet: ReadonlySet<string>;
  let uploadSet: ReadonlySet<string>;
  let paidOnlySet: ReadonlySet<string>;
  /** invoice bounds, rate tokens and the upload budget: kept across reloads (process-state.ts) */
  let st: PaywallProcessState;
  let backendDown = false;
  let sweepTimer: NodeJS.Timeout | null = null;
  let revokedCheck: Promise<void> | null = null;
  let settleCheck: Promise<void> | null = null;
  const m = {} as {
    invoices: HookCounter;
    earned: HookCounter;
    debited: HookCounter;
    paidPeers: HookGauge;
    refusals: HookCounter;
    backendErrors: HookCounter;
    grants: HookCounter;
    paidOnly: HookCounter;
    uploadRefused: HookCounter;
  };

  // ---- sessions and tiers ------------------------------------------------------------------

  function session(peer: HookPeer): Session {
    let s = peer.state.get(STATE_SESSION) as Session | undefined;
    if (!s) {
      s = { kind: 'free', tier: '', tokenId: '', expiresAt: 0, balanceMsat: 0n, meteredBytes: 0, chargedUnits: 0, open: new Map(), pending: 0 };
      peer.state.set(STATE_SESSION, s);
    }
    return s;
  }
  const existing = (peer: HookPeer) => peer.state.get(STATE_SESSION) as Session | undefined;
  const paid = (s: Session | undefined, now: number) => s !== undefined && s.kind !== 'free' && (s.kind !== 'pass' || s.expiresAt > now);
  /**
   * Credit is honoured only while the config sells it: with `credit` gone (a reload) nothing would
   * meter a credit peer, which would keep its tier for free. Balances stay in the store for when
   * credit is back.
   */
  const honored = (kind: GrantKind | 'free') => kind !== 'credit' || o.credit !== undefined;

  function apply(peer: HookPeer, s: Session, g: GrantRecord, balanceMsat: bigint): void {
    Object.assign(s, { kind: g.kind, tier: g.tier, tokenId: g.tokenId, expiresAt: g.expiresAt, balanceMsat });
    peer.state.set(o.tierKey, g.tier);
    peer.state.set(STATE_PAID, true);
    peer.state.set(STATE_EXPIRES, g.expiresAt);
    // not evicted; keeps a reserved slot. One cheap credential on many connections (many
    // addresses are cheap with IPv6) must not pin every slot: only so many of its connections.
    const holders = hookCtx.peers().filter((p) => p.id !== peer.id && p.priority && existing(p)?.tokenId === g.tokenId).length;
    hookCtx.setPriority(peer.id, holders < o.priorityPerCredential);
  }

  function revert(peer: HookPeer, s: Session): void {
    if (peer.state.get(o.tierKey) === s.tier) peer.state.delete(o.tierKey);
    peer.state.delete(STATE_PAID);
    peer.state.delete(STATE_EXPIRES);
    Object.assign(s, { kind: 'free', tier: '', tokenId: '', expiresAt: 0, balanceMsat: 0n });
    hookCtx.setPriority(peer.id, false);
  }

  /** Passes that ran out go back to free; the paid-peers gauge is recounted. */
  function sweep(): void {
    const now = nowS();
    const perTier = new Map<string, number>([...Object.keys(o.passes), ...(o.credit ? [o.credit.tier] : [])].map((t) => [t, 0]));
    for (const peer of hookCtx.peers()) {
      const s = existing(peer);
      if (!s || s.kind === 'free') continue;
      if (!paid(s, now) || !honored(s.kind)) revert(peer, s);
      else perTier.set(s.tier, (perTier.get(s.tier) ?? 0) + 1);
    }
    for (const [tier, n] of perTier) m.paidPeers.set(n, { tier });
    for (const [hash, e] of st.openAll) if (e.expiresAt <= now) forgetOpen(hash, true);
    if (store instanceof SharedPaywallStore) revokedCheck ??= cutBackRevoked().finally(() => (revokedCheck = null));
    settleCheck ??= checkExpired().finally(() => (settleCheck = null));
  }

  /**
   * Expired unclaimed invoices: the backend tells paid from unpaid. A paid one is kept until it is
   * claimed (a buyer whose client died after paying claims it days later); an unpaid one is
   * forgotten, so invoices nobody pays (one per request) do not pile up in memory and on disk.
   */
  async function checkExpired(): Promise<void> {
    const now = nowS();
    let asked = 0;
    for (const [hash, due] of st.checks) {
      if (due > now) continue;
      if (asked++ >= CHECKS_PER_SWEEP) return;
      st.checks.delete(hash);
      let status;
      let inv;
      try {
        inv = await store.invoice(hash);
        if (!inv || (await store.claimed(hash))) continue;
        status = await backend.lookupInvoice(hash);
        backendOk();
      } catch (e) {
        st.checks.set(hash, now + SETTLE_MARGIN_S); // asked again later; nothing is forgotten meanwhile
        if (!(e instanceof StoreUnavailableError)) backendFailed('lookup_invoice', e);
        return;
      }
      try {
        if (status.state === 'settled') {
          await store.keepPaid(hash);
          m.invoices.inc({ event: 'paid_unclaimed' });
          hookCtx.log.info('paywall: an invoice was paid but not claimed; kept until it is', { paymentHash: hash });
        } else if (status.state === 'open' && now < inv.expiresAt + OPEN_GRACE_S) {
          // maybe still payable by the backend's clock (CLN's own expiry, a clock behind ours): asked once more
          st.checks.set(hash, inv.expiresAt + OPEN_GRACE_S);
        } else if (status.state === 'unknown') {
          // another node than the one that issued it (the backend was changed?): never forget a maybe-paid invoice
          hookCtx.log.warn('paywall: the backend does not know an invoice this proxy issued; kept, asked again after a restart', { paymentHash: hash });
        } else await store.forgetInvoice(hash);
      } catch (e) {
        st.checks.set(hash, now + SETTLE_MARGIN_S);
        hookCtx.log.error('paywall: could not record an expired invoice', { paymentHash: hash, error: (e as Error).message });
        return;
      }
    }
  }

  /** A revocation made through another proxy of the fleet (the shared store) reaches this proxy's holders within a sweep. */
  async function cutBackRevoked(): Promise<void> {
    // one question per credential, not per connection, a few at a time
    const holders = new Map<string, HookPeer[]>();
    for (const peer of hookCtx.peers()) {
      const s = existing(peer);
      if (!s || s.kind === 'free') continue;
      const list = holders.get(s.tokenId);
      if (list) list.push(peer);
      else holders.set(s.tokenId, [peer]);
    }
    const tokens = [...holders.keys()];
    try {
      for (let i = 0; i < tokens.length; i += REVOCATION_QUERIES) {
        const batch = tokens.slice(i, i + REVOCATION_QUERIES);
        const revoked = await Promise.all(batch.map((t) => store.isRevoked(t)));
        batch.forEach((tokenId, k) => {
          if (!revoked[k]) return;
          for (const peer of holders.get(tokenId)!) {
            const now = existing(peer); // after the wait: a new grant may have replaced the revoked one
            if (now && now.kind !== 'free' && now.tokenId === tokenId) revert(peer, now);
          }
        });
      }
    } catch {
      // the shared store is unreachable (logged by the store): the next sweep asks again
    }
  }

  // ---- answers -------------------------------------------------------------------------------

  function refusal(nonce: bigint, request: string, reason: P.RefuseReason, message: string): OutgoingMessage {
    m.refusals.inc({ request, reason });
    return { command: P.CMD.refuse, payload: P.encodeRefuse({ nonce, command: request, code: P.REFUSE[reason], message }) };
  }
  const send = (peer: HookPeer, msg: OutgoingMessage) => hookCtx.send(peer.id, msg);

  /** The nonce of a request too malformed to decode, when its first 8 bytes are there. */
  const nonceOf = (payload: Buffer) => (payload.length >= 8 ? payload.readBigUInt64LE(0) : 0n);

  /** x: requests are answered only after the handshake and to peers that announced the x: feature. */
  const ready = (peer: HookPeer) => peer.handshakeComplete && peer.features.has(X_FEATURE_ID);

  /** An x: command handler: answered only when ready; a payload that does not decode is refused as malformed. */
  function request<T>(command: string, decode: (b: Buffer) => T, handle: (q: T, peer: HookPeer) => HookResult | undefined) {
    return (msg: { payload: Buffer }, peer: HookPeer): HookResult | undefined => {
      if (!ready(peer)) return undefined;
      let q: T;
      try {
        q = decode(msg.payload);
      } catch (e) {
        return { push: [refusal(nonceOf(msg.payload), command, 'malformed', (e as Error).message)] };
      }
      return handle(q, peer);
    };
  }

  function backendFailed(op: string, e: unknown): void {
    const kind = e instanceof BackendError ? e.kind : 'protocol';
    m.backendErrors.inc({ op, kind });
    if (!backendDown) {
      backendDown = true;
      hookCtx.log.warn('lightning backend unavailable: refusing invoices and claims until it answers (logged once per outage)', { backend: backend.kind, op, error: e instanceof Error ? e.message : String(e) });
    }
  }
  function backendOk(): void {
    if (backendDown) {
      backendDown = false;
      hookCtx.log.info('lightning backend answers again', { backend: backend.kind });
    }
  }

  /**
   * Run `work` for this peer off every message lane, bounded per connection; its answer (or a
   * refusal if it throws) goes out with ctx.send.
   */
  function background(peer: HookPeer, nonce: bigint, request: string, work: () => Promise<OutgoingMessage>): HookResult | undefined {
    const s = session(peer);
    if (s.pending >= o.maxPendingPerPeer) return { push: [refusal(nonce, request, 'busy', `at most ${o.maxPendingPerPeer} requests at a time`)] };
    s.pending++;
    void work()
      .catch((e: unknown) => {
        if (e instanceof StoreUnavailableError) return refusal(nonce, request, 'backend_unavailable', 'the shared store is unreachable; try again later');
        hookCtx.log.error('paywall request failed', { request, error: e instanceof Error ? e.message : String(e) });
        return refusal(nonce, request, 'internal', 'internal error; try again');
      })
      .then((answer) => {
        s.pending--;
        send(peer, answer);
      });
    return undefined;
  }

  // ---- invoices ------------------------------------------------------------------------------

  function forgetOpen(hash: string, expired: boolean): void {
    const e = st.openAll.get(hash);
    if (!e) return;
    st.openAll.delete(hash);
    const a = st.openByAddress.get(e.address);
    a?.delete(hash);
    if (a && a.size === 0) st.openByAddress.delete(e.address);
    if (expired) {
      m.invoices.inc({ event: 'expired' });
      if (!hash.startsWith(PLACEHOLDER)) st.checks.set(hash, e.expiresAt + SETTLE_MARGIN_S);
    }
  }

  /** Count an invoice (or a slot reserved for one) against its address and the proxy's total. */
  function holdOpen(hash: string, address: string, expiresAt: number): void {
    st.openAll.set(hash, { address, expiresAt });
    let a = st.openByAddress.get(address);
    if (!a) st.openByAddress.set(address, (a = new Map()));
    a.set(hash, expiresAt);
  }

  function countOpen(map: Map<string, number>, now: number): number {
    for (const [h, exp] of map) if (exp <= now) map.delete(h);
    return map.size;
  }

  function takeToken(address: string, nowMs: number): boolean {
    const rate = o.invoices.rate;
    let b = st.buckets.get(address);
    if (!b) st.buckets.set(address, (b = { tokens: o.invoices.burst, at: nowMs }));
    else {
      b.tokens = Math.min(o.invoices.burst, b.tokens + ((nowMs - b.at) / 1000) * rate);
      b.at = nowMs;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  function onInvoice(q: P.InvoiceRequest, peer: HookPeer): HookResult | undefined {
    const R = (reason: P.RefuseReason, text: string) => ({ push: [refusal(q.nonce, P.CMD.invoice, reason, text)] });
    const offer = offers.find((x) => x.id === q.offerId);
    if (!offer) return R('unknown_offer', `no offer "${q.offerId}"`);
    let amount: bigint;
    if (offer.kind === 'pass') {
      if (q.amountMsat !== 0n && q.amountMsat !== offer.priceMsat) return R('bad_amount', `a ${offer.id} pass costs ${offer.priceMsat} msat`);
      amount = offer.priceMsat;
    } else {
      amount = q.amountMsat;
      if (amount < offer.priceMsat || amount > offer.maxMsat || amount % 1000n !== 0n) return R('bad_amount', `credit is bought in whole sats from ${offer.priceMsat} to ${offer.maxMsat} msat`);
    }
    const now = nowS();
    const s = session(peer);
    if (countOpen(s.open, now) >= o.invoices.perPeer) return R('too_many_invoices', `at most ${o.invoices.perPeer} open invoices per connection`);
    const byAddr = st.openByAddress.get(peer.address);
    if (byAddr && countOpen(byAddr, now) >= o.invoices.perAddress) return R('too_many_invoices', `at most ${o.invoices.perAddress} open invoices per address`);
    if (st.openAll.size >= o.invoices.total) {
      sweep();
      if (st.openAll.size >= o.invoices.total) return R('too_many_invoices', 'too many open invoices on this proxy; try later');
    }
    if (!takeToken(peer.address, Date.now())) return R('rate_limited', `at most ${o.invoices.rate} invoices per second per address`);
    const expiry = Math.max(1, Math.ceil(o.invoices.expiry));
    // reserve the slot now (connection, address, total) so concurrent requests stay within the bounds
    const placeholder = `${PLACEHOLDER}${randomBytes(8).toString('hex')}`;
    s.open.set(placeholder, now + expiry);
    holdOpen(placeholder, peer.address, now + expiry);
    return background(peer, q.nonce, P.CMD.invoice, async () => {
      try {
        let inv;
        try {
          inv = await backend.createInvoice(amount, `${offer.id} (${hookCtx.network} node service via bitcoin-hook-proxy)`, expiry);
          backendOk();
        } catch (e) {
          backendFailed('create_invoice', e);
          return refusal(q.nonce, P.CMD.invoice, 'backend_unavailable', 'the Lightning backend is not answering; try later');
        }
        const claimToken = randomBytes(16);
        await store.addInvoice({ paymentHash: inv.paymentHash, claimToken: claimToken.toString('hex'), offer: offer.id, kind: offer.kind, tier: offer.tier, durationSeconds: Number(offer.durationSeconds), amountMsat: amount, expiresAt: inv.expiresAt, createdAt: nowS() });
        s.open.set(inv.paymentHash, inv.expiresAt);
        holdOpen(inv.paymentHash, peer.address, inv.expiresAt);
        m.invoices.inc({ event: 'issued' });
        const payload = P.encodeInvoiceAnswer({ nonce: q.nonce, paymentHash: Buffer.from(inv.paymentHash, 'hex'), claimToken, amountMsat: amount, expiresAt: BigInt(inv.expiresAt), bolt11: inv.bolt11 });
        return { command: P.CMD.invoice, payload };
      } finally {
        // the reservation ends once the real invoice holds the slot (or the request failed)
        s.open.delete(placeholder);
        forgetOpen(placeholder, false);
      }
    });
  }

  // ---- claims, grants, auth ------------------------------------------------------------------

  function grantMessage(nonce: bigint, g: GrantRecord, balanceMsat: bigint, flags: number): OutgoingMessage {
    return {
      command: P.CMD.grant,
      payload: P.encodeGrant({ nonce, flags, kind: g.kind, tier: g.tier, expiresAt: BigInt(g.expiresAt), balanceMsat: g.kind === 'credit' ? balanceMsat : 0n, credential: Buffer.from(g.credential, 'hex') }),
    };
  }

  function onClaim(c: P.ClaimRequest, peer: HookPeer): HookResult | undefined {
    const hash = c.paymentHash.toString('hex');
    const R = (reason: P.RefuseReason, text: string) => refusal(c.nonce, P.CMD.claim, reason, text);
    return background(peer, c.nonce, P.CMD.claim, async () => {
      const inv = await store.invoice(hash);
      if (!inv) return R('not_issued', 'this proxy issued no invoice with that payment hash');
      if (!timingSafeEqual(Buffer.from(inv.claimToken, 'hex'), c.claimToken)) return R('not_yours', 'the claim token does not match: the invoice was issued to someone else');
      if (!sha256(c.preimage).equals(c.paymentHash)) return R('bad_preimage', 'sha256(preimage) is not the payment hash');
      const s = session(peer);
      const already = await store.claimed(hash);
      if (already) return deliver(peer, s, c.nonce, already, false);
      let status;
      try {
        status = await backend.lookupInvoice(hash);
        backendOk();
      } catch (e) {
        backendFailed('lookup_invoice', e);
        return R('backend_unavailable', 'the Lightning backend is not answering; try again later');
      }
      if (status.state !== 'settled') {
        if (status.state === 'expired' || status.state === 'canceled' || inv.expiresAt <= nowS()) return R('invoice_expired', 'the invoice expired unpaid');
        return R('unpaid', `the invoice is not paid (backend says ${status.state})`);
      }
      if (status.amountPaidMsat < inv.amountMsat) return R('underpaid', `paid ${status.amountPaidMsat} msat of ${inv.amountMsat}`);
      const tokenId = randomBytes(16);
      // the terms the invoice was sold on, not the offers now (the operator may have changed them)
      const offer = offers.find((x) => x.id === inv.offer);
      const kind = inv.kind;
      const tier = inv.tier ?? offer?.tier ?? inv.offer;
      const expiresAt = kind === 'pass' ? nowS() + (inv.durationSeconds ?? Number(offer?.durationSeconds ?? 0n)) : 0;
      const credential = signCredential(ring, { kind, tokenId, paymentHash: c.paymentHash, expiresAt, tier });
      const record: GrantRecord = {
        paymentHash: hash,
        tokenId: tokenId.toString('hex'),
        kind,
        tier,
        expiresAt,
        creditMsat: kind === 'credit' ? status.amountPaidMsat : 0n,
        credential: credential.toString('hex'),
        grantedAt: nowS(),
      };
      const { grant, first } = await store.claim(record); // on disk before anything is sent
      forgetOpen(hash, false);
      s.open.delete(hash);
      if (first) {
        m.invoices.inc({ event: 'settled' });
        m.earned.inc({}, Number(status.amountPaidMsat));
      }
      return deliver(peer, s, c.nonce, grant, first);
    });
  }

  async function deliver(peer: HookPeer, s: Session, nonce: bigint, g: GrantRecord, first: boolean): Promise<OutgoingMessage> {
    if (await store.isRevoked(g.tokenId)) return refusal(nonce, P.CMD.claim, 'credential_revoked', 'the grant for this payment was revoked');
    const balance = g.kind === 'credit' ? ((await store.balance(g.tokenId)) ?? 0n) : 0n;
    // a spent credit or an ended pass: the grant (its credential) again, but not the tier (as x:auth)
    if ((g.kind === 'credit' ? balance > 0n : g.expiresAt > nowS()) && honored(g.kind)) apply(peer, s, g, balance);
    m.grants.inc({ kind: g.kind, via: first ? 'claim' : 'redelivery' });
    return grantMessage(nonce, g, balance, first ? 0 : P.GRANT_REDELIVERED);
  }

  function onAuth(a: P.AuthRequest, peer: HookPeer): HookResult | undefined {
    const v = verifyCredential(ring, a.credential, nowS());
    if (!v.ok) return { push: [refusal(a.nonce, P.CMD.auth, CREDENTIAL_REFUSAL[v.problem], `credential refused: ${v.problem.replace('_', ' ')}`)] };
    const cred = v.credential;
    if (!honored(cred.kind)) return { push: [refusal(a.nonce, P.CMD.auth, 'unknown_offer', 'credit is not offered by this proxy now; the balance is kept')] };
    const tokenId = cred.tokenId.toString('hex');
    return background(peer, a.nonce, P.CMD.auth, async () => {
      if (await store.isRevoked(tokenId)) return refusal(a.nonce, P.CMD.auth, 'credential_revoked', 'this credential was revoked');
      const balance = cred.kind === 'credit' ? ((await store.balance(tokenId)) ?? 0n) : 0n;
      if (cred.kind === 'credit' && balance === 0n) return refusal(a.nonce, P.CMD.auth, 'balance_empty', 'the credit of this credential is spent');
      const g: GrantRecord = {
        paymentHash: cred.paymentHash.toString('hex'),
        tokenId,
        kind: cred.kind,
        tier: cred.tier,
        expiresAt: cred.expiresAt,
        creditMsat: 0n,
        credential: a.credential.toString('hex'),
        grantedAt: 0,
      };
      apply(peer, session(peer), g, balance);
      m.grants.inc({ kind: g.kind, via: 'auth' });
      return grantMessage(a.nonce, g, balance, P.GRANT_FROM_AUTH);
    });
  }

  function balanceMessage(nonce: bigint, s: Session | undefined): OutgoingMessage {
    const now = nowS();
    const isPaid = paid(s, now);
    const free = BigInt(o.credit?.freeBytes ?? 0);
    const metered = BigInt(s?.meteredBytes ?? 0);
    const credit = isPaid && s!.kind === 'credit';
    return {
      command: P.CMD.balance,
      payload: P.encodeBalance({
        nonce,
        kind: isPaid ? (s!.kind as GrantKind) : 'free',
        tier: isPaid ? s!.tier : '',
        expiresAt: isPaid ? BigInt(s!.expiresAt) : 0n,
        balanceMsat: credit ? s!.balanceMsat : 0n,
        chargedBytes: credit && metered > free ? metered - free : 0n,
        freeBytesLeft: credit && free > metered ? free - metered : 0n,
      }),
    };
  }

  // ---- relay path: metering, paid-only commands, the free upload budget ---------------------

  /** Debit whole units beyond the free bytes; at zero the peer is back to free and told so. */
  function meter(size: number, peer: HookPeer, s: Session): HookResult | undefined {
    const c = o.credit!;
    s.meteredBytes += size;
    const over = s.meteredBytes - c.freeBytes;
    if (over < c.unitBytes) return undefined;
    const units = Math.floor(over / c.unitBytes);
    if (units <= s.chargedUnits) return undefined;
    const delta = BigInt(units - s.chargedUnits) * BigInt(c.msatPerUnit);
    s.chargedUnits = units;
    if (delta === 0n) return undefined;
    const charged = s.balanceMsat < delta ? s.balanceMsat : delta;
    s.balanceMsat -= charged;
    m.debited.inc({}, Number(charged));
    const tokenId = s.tokenId;
    void store.debit(tokenId, delta).then(
      (left) => shareBalance(tokenId, left),
      (e: unknown) => hookCtx.log.error('paywall: could not save a debit', { error: (e as Error).message }),
    );
    if (s.balanceMsat > 0n) return undefined;
    revert(peer, s);
    return { push: [balanceMessage(0n, s)], log: { level: 'info', msg: 'paywall: credit spent, peer back to the free tier' } };
  }

  /**
   * The store's balance after a debit, for every connection holding that credit: each keeps a
   * copy for the relay path, and n connections presenting one credential must not spend it n times.
   */
  function shareBalance(tokenId: string, left: bigint): void {
    for (const peer of hookCtx.peers()) {
      const s = existing(peer);
      if (s?.kind !== 'credit' || s.tokenId !== tokenId || s.balanceMsat <= left) continue;
      s.balanceMsat = left;
      if (left > 0n) continue;
      revert(peer, s);
      send(peer, balanceMessage(0n, s));
    }
  }

  function uploadSpent(nowMs: number): boolean {
    const day = Math.floor(nowMs / 86_400_000);
    if (day !== st.upload.day) Object.assign(st.upload, { day, bytes: 0 });
    return st.upload.bytes >= o.freeUpload!.dailyBytes;
  }

  const isBlockType = (t: number) => {
    const base = t & ~codec.InvType.WITNESS_FLAG;
    return base === codec.InvType.BLOCK || base === codec.InvType.FILTERED_BLOCK || base === codec.InvType.CMPCT_BLOCK;
  };

  /** The free budget is spent: blocks requested by a free peer are answered notfound, the rest goes on. */
  function budgetGetdata(msg: { decode<T>(): T }): HookResult | undefined {
    let items: codec.InvMessage;
    try {
      items = msg.decode<codec.InvMessage>();
    } catch {
      return undefined; // bitcoind judges a malformed getdata
    }
    const blocks = items.filter((i) => isBlockType(i.type));
    if (blocks.length === 0) return undefined;
    m.uploadRefused.inc({}, blocks.length);
    const push = [{ command: 'notfound', payload: codec.encodePayload('notfound', blocks) }];
    const rest = items.filter((i) => !isBlockType(i.type));
    return rest.length > 0 ? { push, replace: { command: 'getdata', payload: codec.encodePayload('getdata', rest) } } : { push, action: 'drop' };
  }

  // ---- admin routes: /hooks/<name>/grants, /revoke, /settle on the admin API ---------------

  async function listGrants() {
    const grants = [];
    for (const g of await store.grants()) grants.push({ ...g, balanceMsat: g.kind === 'credit' ? ((await store.balance(g.tokenId)) ?? 0n) : null, revoked: await store.isRevoked(g.tokenId) });
    return { grants };
  }

  /** Revoke a credential (on disk before the answer) and cut connected holders back to free. */
  async function revoke({ tokenId }: { tokenId: string }) {
    await store.revoke(tokenId);
    let cutBack = 0;
    for (const peer of hookCtx.peers()) {
      const s = existing(peer);
      if (s && s.tokenId === tokenId && s.kind !== 'free') {
        revert(peer, s);
        cutBack++;
      }
    }
    hookCtx.log.info('credential revoked', { tokenId, cutBack });
    return { revoked: tokenId, cutBack };
  }

  /** Dev backend only: pay an invoice as a payer would (by hash or BOLT11) and return the preimage a payer learns. */
  function settle(q: z.output<typeof settleInput>) {
    if (backend.kind !== 'dev') throw new HookAdminError(409, `settle is for the dev backend only (this paywall uses ${backend.kind})`);
    const dev = backend as DevBackend;
    try {
      const amount = q.amountMsat === undefined ? undefined : BigInt(q.amountMsat);
      const preimage = q.bolt11 !== undefined ? dev.pay(q.bolt11) : dev.settle(q.paymentHash!, amount);
      return { paymentHash: sha256(Buffer.from(preimage, 'hex')).toString('hex'), preimage };
    } catch (e) {
      if (e instanceof BackendError) throw new HookAdminError(/no invoice/.test(e.message) ? 404 : 409, e.message);
      throw new HookAdminError(400, `not a BOLT11 invoice of this backend: ${(e as Error).message}`);
    }
  }
  // ---- the hook ------------------------------------------------------------------------------

  return defineHook<PaywallOptions>({
    apiVersion: HOOK_API_VERSION,
    name: NAME,
    options: Options,
    wants: (opt) => ({
      inbound: [...new Set([...opt.paidOnly, ...(opt.freeUpload ? ['getdata'] : [])])],
      outbound: [...new Set([...(opt.credit?.commands ?? []), ...(opt.freeUpload ? UPLOAD : [])])],
    }),

    async init(options, ctx) {
      o = options;
      hookCtx = ctx;
      ring = loadKeyring(o.keys, deps.env);
      lnNetwork = o.lightningNetwork ?? LN_NETWORK[ctx.network] ?? 'regtest';
      backend = createBackend(o.backend as BackendConfig, lnNetwork, Math.ceil(o.backendTimeout * 1000));
      // a shared ctx.store (Redis) holds claims and balances for the whole fleet; else the file
      store = ctx.store.shared && !deps.openStore ? new SharedPaywallStore(ctx.store) : (deps.openStore ?? openFileStore)(o.store.file);
      await store.open();
      st = paywallProcessState(`${ctx.name}\0${store instanceof SharedPaywallStore ? 'shared' : path.resolve(o.store.file)}`);
      // after a restart: every invoice still unsettled is asked about once it has expired
      for (const inv of await store.unsettled()) if (!st.openAll.has(inv.paymentHash)) st.checks.set(inv.paymentHash, inv.expiresAt + SETTLE_MARGIN_S);
      offers = [
        ...Object.entries(o.passes).map(([id, p]): P.Offer => ({
          id,
          kind: 'pass',
          tier: id,
          priceMsat: BigInt(p.priceSats) * 1000n,
          durationSeconds: BigInt(Math.ceil(p.duration)),
          maxMsat: 0n,
          msatPerUnit: 0n,
          unitBytes: 0n,
          freeBytes: 0n,
        })),
        ...(o.credit
          ? [{ id: 'credit', kind: 'credit' as const, tier: o.credit.tier, priceMsat: BigInt(o.credit.minSats) * 1000n, durationSeconds: 0n, maxMsat: BigInt(o.credit.maxSats) * 1000n, msatPerUnit: BigInt(o.credit.msatPerUnit), unitBytes: BigInt(o.credit.unitBytes), freeBytes: BigInt(o.credit.freeBytes) }]
          : []),
      ];
      meterSet = new Set(o.credit?.commands ?? []);
      uploadSet = new Set(o.freeUpload ? UPLOAD : []);
      paidOnlySet = new Set(o.paidOnly);
      m.invoices = ctx.metrics.counter('paywall_invoices_total', 'Lightning invoices by event: issued, settled (claimed), expired (unclaimed), paid_unclaimed (expired, found paid: kept for its claim)', ['event']);
      m.earned = ctx.metrics.counter('paywall_earned_msat_total', 'Millisatoshis received for claimed invoices');
      m.debited = ctx.metrics.counter('paywall_debited_msat_total', 'Millisatoshis of credit debited for relayed bytes');
      m.paidPeers = ctx.metrics.gauge('paywall_paid_peers', 'Connected peers with a paid tier, by tier', ['tier']);
      m.refusals = ctx.metrics.counter('paywall_refusals_total', 'x:refuse answers by request and reason', ['request', 'reason']);
      m.backendErrors = ctx.metrics.counter('paywall_backend_errors_total', 'Failed Lightning backend calls by operation and kind', ['op', 'kind']);
      m.grants = ctx.metrics.counter('paywall_grants_total', 'Tiers granted by kind and how (claim, redelivery, auth)', ['kind', 'via']);
      m.paidOnly = ctx.metrics.counter('paywall_paid_only_refused_total', 'Paid-only commands refused to free peers', ['command']);
      m.uploadRefused = ctx.metrics.counter('paywall_free_upload_notfound_total', 'Block requests of free peers answered notfound after the daily free budget');
      sweepTimer = setInterval(sweep, 5000);
      sweepTimer.unref();
    },

    onMessage(msg, peer) {
      const s = existing(peer);
      if (msg.direction === 'outbound') {
        const now = msg.receivedAt / 1000;
        if (s?.kind === 'credit' && meterSet.has(msg.command)) return meter(msg.size, peer, s);
        if (uploadSet.has(msg.command) && !paid(s, now)) {
          uploadSpent(msg.receivedAt);
          st.upload.bytes += msg.size;
        }
        return undefined;
      }
      if (paid(s, msg.receivedAt / 1000)) return undefined;
      if (paidOnlySet.has(msg.command)) {
        m.paidOnly.inc({ command: msg.command });
        return applyAction(o.paidOnlyAction, `paywall: ${msg.command} is for paid tiers`);
      }
      if (msg.command === 'getdata' && o.freeUpload && uploadSpent(msg.receivedAt)) return budgetGetdata(msg);
      return undefined;
    },

    commands: {
      [P.CMD.offers]: request(P.CMD.offers, (b) => P.decodeNonce(b, P.CMD.offers), (nonce) => {
        const payload = P.encodeOffers({
          nonce,
          version: P.OFFERS_VERSION,
          lightningNetwork: lnNetwork,
          currency: 'BTC',
          offers,
          paidOnly: [...paidOnlySet],
          freeDailyUploadBytes: BigInt(o.freeUpload?.dailyBytes ?? 0),
        });
        return { push: [{ command: P.CMD.offers, payload }] };
      }),
      [P.CMD.invoice]: request(P.CMD.invoice, P.decodeInvoiceRequest, onInvoice),
      [P.CMD.claim]: request(P.CMD.claim, P.decodeClaim, onClaim),
      [P.CMD.auth]: request(P.CMD.auth, P.decodeAuth, onAuth),
      [P.CMD.balance]: request(P.CMD.balance, (b) => P.decodeNonce(b, P.CMD.balance), (nonce, peer) => ({ push: [balanceMessage(nonce, existing(peer))] })),
    },

    admin: {
      'GET grants': () => listGrants(),
      'POST revoke': { input: revokeInput, handler: revoke },
      'POST settle': { input: settleInput, handler: settle },
    },

    async close() {
      if (sweepTimer) clearInterval(sweepTimer);
      await store?.close();
      await backend?.close?.();
    },
  });
}

export default createPaywallHook();
