/**
 * The buyer inside the proxy: a hook for the chain of outbound sessions (connections our own
 * node opened through the SOCKS5 front). It announces the x: feature to the remote (when no
 * hook of the chain does), and once the handshake is done with a remote that announced it, it
 * presents a stored credential for that seller, or buys per the budget. Its x: messages and the
 * seller's answers stay between the two proxies: they are x: frames, which are never forwarded
 * to our node, and this hook consumes the answers. Written against the public hook API.
 */
import { HOOK_API_VERSION, X_FEATURE_ID, type HookContext, type HookModule, type HookPeer } from '../hooks/index.js';
import { decide, type BudgetPolicy } from './budget.js';
import { BuyerError } from './errors.js';
import type { Payer } from './payers/types.js';
import { CMD, parseFeatureData } from './protocol.js';
import { buy, feeLimit, presentCredential } from './purchase.js';
import { XRequests } from './requests.js';
import { SellerClient } from './seller.js';
import type { Wallet } from './wallet.js';

/** peer.state keys this hook writes: the tier in force on the connection, and how it got there */
export const STATE_BOUGHT_TIER = 'buyer.tier';
export const STATE_BUYER_OUTCOME = 'buyer.outcome';
/** where the SOCKS front puts the destination as our node asked for it */
const STATE_DESTINATION = 'socks.destination';

export interface OutboundBuyerOptions {
  wallet: Wallet;
  /** null: present credentials only, never buy */
  payer: Payer | null;
  budget: BudgetPolicy | null;
  /** announce the x: feature to the remote (false when another hook of the chain already does) */
  announce: boolean;
  /** ms to wait for each answer of the seller */
  requestTimeoutMs?: number;
  /** routing fees per purchase at most (`outbound.maxFeeSats`); counted against the budget */
  maxFeeMsat?: bigint;
}

export type BuyerOutcome = 'presented' | 'bought' | 'skipped' | 'not_selling' | 'no_x' | BuyerError['code'] | 'error';

export function createOutboundBuyer(o: OutboundBuyerOptions): HookModule {
  const requests = new Map<number, XRequests>();
  /** one purchase per seller at a time: a second connection waits, then presents what the first bought */
  const bySeller = new Map<string, Promise<unknown>>();
  /** msat of purchases under way: connections to different sellers run at once but share one budget */
  let underWayMsat = 0n;
  let outcomes: ReturnType<HookContext['metrics']['counter']> | null = null;

  const deliver = (msg: { command: string; payload: Buffer }, peer: HookPeer) => {
    requests.get(peer.id)?.deliver(msg.command, msg.payload);
  };

  async function run(peer: HookPeer, ctx: HookContext): Promise<BuyerOutcome> {
    const feature = peer.features.get(X_FEATURE_ID);
    if (!feature) return 'no_x';
    let sells = false;
    try {
      const f = parseFeatureData(feature);
      // a cut list (flag bit 0) may have lost x:offers: then ask
      sells = (f?.commands.includes(CMD.offers) || f?.truncated) ?? false;
    } catch {
      /* unreadable data: treated as selling nothing */
    }
    if (!sells) return 'not_selling';
    const seller = String(peer.state.get(STATE_DESTINATION) ?? `${peer.address}:${peer.port}`).toLowerCase();
    const req = new XRequests((command, payload) => ctx.send(peer.id, { command, payload }), o.requestTimeoutMs ?? 30_000);
    requests.set(peer.id, req);
    const s = new SellerClient(seller, req);
    const previous = bySeller.get(seller) ?? Promise.resolve();
    const mine = previous.catch(() => {}).then(async (): Promise<BuyerOutcome> => {
      const presented = await presentCredential(s, o.wallet);
      if (presented) {
        peer.state.set(STATE_BOUGHT_TIER, presented.tier);
        return 'presented';
      }
      if (!o.budget || !o.payer) return 'skipped';
      const offers = await s.offers();
      const d = decide(o.budget, seller, offers, o.wallet, Date.now(), underWayMsat, o.maxFeeMsat);
      if ('skip' in d) {
        ctx.log.info('not buying', { seller, why: d.skip });
        return 'skipped';
      }
      ctx.log.info('buying', { seller, offer: d.buy.id, tier: d.buy.tier, msat: d.amountMsat.toString() });
      const cost = d.amountMsat + feeLimit(d.amountMsat, o.maxFeeMsat);
      underWayMsat += cost; // taken with no await since decide()
      let g;
      try {
        g = await buy(s, { offerId: d.buy.id, amountMsat: d.amountMsat, maxMsat: d.amountMsat, ...(o.maxFeeMsat !== undefined ? { maxFeeMsat: o.maxFeeMsat } : {}), payer: o.payer, wallet: o.wallet, offers });
      } finally {
        underWayMsat -= cost; // in the wallet by now, or not spent
      }
      peer.state.set(STATE_BOUGHT_TIER, g.tier);
      ctx.log.info('bought', { seller, tier: g.tier, expiresAt: g.expiresAt.toString(), balanceMsat: g.balanceMsat.toString() });
      return 'bought';
    });
    bySeller.set(seller, mine);
    try {
      return await mine;
    } finally {
      if (bySeller.get(seller) === mine) bySeller.delete(seller);
    }
  }

  return {
    apiVersion: HOOK_API_VERSION,
    name: 'buyer',
    wants: { inbound: ['verack'], outbound: ['verack'] },
    init(_options, ctx) {
      outcomes = ctx.metrics.counter('buyer_outcomes_total', 'outbound connections to sellers by what the buyer did: presented, bought, skipped, not_selling, no_x, or the error', ['outcome']);
    },
    features: () => (o.announce ? [{ id: X_FEATURE_ID }] : []),
    onMessage(_msg, peer, ctx) {
      if (!peer.handshakeComplete || peer.state.has(STATE_BUYER_OUTCOME)) return;
      peer.state.set(STATE_BUYER_OUTCOME, 'running');
      // after this verack has gone out: x: messages only after the handshake (docs/x-protocol.md §3.1)
      setImmediate(() => {
        run(peer, ctx).then(
          (outcome) => finish(peer, ctx, outcome),
          (e: unknown) => {
            const outcome: BuyerOutcome = e instanceof BuyerError ? e.code : 'error';
            ctx.log.warn('buying failed', { seller: peer.state.get(STATE_DESTINATION), code: outcome, err: (e as Error).message, ...(e instanceof BuyerError ? { hint: e.hint } : {}) });
            finish(peer, ctx, outcome);
          },
        );
      });
    },
    onDisconnect(peer) {
      requests.get(peer.id)?.fail(new BuyerError('closed', 'the outbound connection closed'));
      requests.delete(peer.id);
    },
    commands: {
      [CMD.offers]: deliver,
      [CMD.invoice]: deliver,
      [CMD.grant]: deliver,
      [CMD.balance]: deliver,
      [CMD.refuse]: deliver,
    },
  };

  function finish(peer: HookPeer, ctx: HookContext, outcome: BuyerOutcome): void {
    peer.state.set(STATE_BUYER_OUTCOME, outcome);
    outcomes?.inc({ outcome });
    ctx.log.debug('buyer done', { outcome });
  }
}
