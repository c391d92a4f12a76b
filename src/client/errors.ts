/** Every way buying can fail, each with what the user can do about it (the CLI prints both). */
export type BuyerErrorCode =
  | 'unreachable'
  | 'handshake_failed'
  | 'no_x_feature'
  | 'no_paywall'
  | 'timeout'
  | 'closed'
  | 'malformed_answer'
  | 'unknown_offer'
  | 'price_above_limit'
  | 'not_allowed'
  | 'budget_exhausted'
  | 'invoice_mismatch'
  | 'payment_failed'
  | 'payment_pending'
  | 'claim_refused'
  | 'refused';

const HINTS: Record<BuyerErrorCode, string> = {
  unreachable: 'check the address and that the node is up',
  handshake_failed: 'the remote is not a Bitcoin node of this network (check --network)',
  no_x_feature: 'this node is not behind bitcoin-hook-proxy with the features module, or is too old (BIP 434): nothing to buy here',
  no_paywall: 'this proxy sells nothing (no paywall module in its chain)',
  timeout: 'the seller did not answer in time: try again later',
  closed: 'the connection closed: try again (a paid purchase is claimed again, not paid twice)',
  malformed_answer: 'the seller answered something that does not follow docs/x-protocol.md: report it to its operator',
  unknown_offer: 'run `offers` to see what this node sells',
  price_above_limit: 'raise the limit (--max-sats) or pick a cheaper offer',
  not_allowed: 'the budget policy does not allow this seller or tier',
  budget_exhausted: 'the daily or total budget is spent: wait for tomorrow or raise it',
  invoice_mismatch: 'the seller\'s invoice does not match what it offered: nothing was paid; do not buy from this seller',
  payment_failed: 'the Lightning payment failed and nothing was spent: check the payer (channels, liquidity, credentials) and try again',
  payment_pending: 'the payment\'s outcome is unknown: run `buy` again later to claim it; it will not be paid twice',
  claim_refused: 'the seller refused the claim: see its reason; the purchase stays in the wallet to claim again',
  refused: 'the seller refused the request: see its reason',
};

export class BuyerError extends Error {
  readonly hint: string;
  constructor(
    readonly code: BuyerErrorCode,
    message: string,
    /** the seller's x:refuse reason, when it refused */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'BuyerError';
    this.hint = HINTS[code];
  }
}
