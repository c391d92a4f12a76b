/**
 * The outbound buying policy (`outbound.budget` in the YAML): which sellers and tiers may be
 * bought, the most per tier, per UTC day and in total. Spending is read from the wallet, which
 * records a purchase before it is paid, so a crash never lets the budget forget a payment.
 */
import { feeLimit, priceOf } from './purchase.js';
import type { Offer, OffersAnswer } from './protocol.js';
import type { Wallet } from './wallet.js';

export interface BudgetPolicy {
  /** tiers that may be bought, in order of preference */
  tiers: string[];
  /** the most to pay for one purchase of a tier, sats; a tier not listed is not bought */
  maxPricePerTier: Record<string, number>;
  maxSatsPerDay: number;
  maxSatsTotal: number;
  /** `any`, or the sellers (host:port as dialled) to buy from */
  sellers: 'any' | string[];
}

export type BudgetDecision = { buy: Offer; amountMsat: bigint } | { skip: string };

const startOfUtcDay = (nowMs: number) => nowMs - (nowMs % 86_400_000);

/**
 * `underWayMsat`: purchases decided but maybe not in the wallet yet (it records one once its invoice is in hand).
 * An offer fits when its price and its fee limit (`maxFeeMsat`, else buy()'s default) do: the wallet counts both.
 */
export function decide(policy: BudgetPolicy, seller: string, offers: OffersAnswer, wallet: Wallet, nowMs = Date.now(), underWayMsat = 0n, maxFeeMsat?: bigint): BudgetDecision {
  if (policy.sellers !== 'any' && !policy.sellers.map((x) => x.toLowerCase()).includes(seller)) return { skip: 'seller not in the budget\'s sellers' };
  const leftToday = BigInt(policy.maxSatsPerDay) * 1000n - wallet.spentMsat(startOfUtcDay(nowMs)) - underWayMsat;
  const leftTotal = BigInt(policy.maxSatsTotal) * 1000n - wallet.spentMsat(0) - underWayMsat;
  const left = leftToday < leftTotal ? leftToday : leftTotal;
  let cheapest: bigint | null = null;
  for (const tier of policy.tiers) {
    const cap = policy.maxPricePerTier[tier];
    if (cap === undefined) continue;
    for (const offer of offers.offers.filter((o) => o.tier === tier)) {
      const amountMsat = priceOf(offer);
      if (amountMsat > BigInt(cap) * 1000n) continue;
      const cost = amountMsat + feeLimit(amountMsat, maxFeeMsat);
      if (cost <= left) return { buy: offer, amountMsat };
      cheapest = cheapest === null || cost < cheapest ? cost : cheapest;
    }
  }
  if (cheapest !== null) return { skip: `budget exhausted: ${left > 0n ? left / 1000n : 0n} sat left ${leftToday < leftTotal ? 'today' : 'in total'}, the cheapest allowed offer costs ${cheapest / 1000n} sat with its fee limit` };
  return { skip: 'no offer in an allowed tier at or under its maximum price' };
}
