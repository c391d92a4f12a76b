/**
 * bitcoin-hook-proxy/client: the buyer's side of the x: protocol. Connect to a node behind
 * bitcoin-hook-proxy, discover what it runs (x:hello) and sells (x:offers), buy a tier over
 * Lightning within a limit, keep the credential in a wallet file and present it later.
 *
 *   const c = await XConnection.connect({ host, port, network: NETWORKS.regtest });
 *   const offers = await c.seller.offers();
 *   const grant = await buy(c.seller, { offerId: 'pro', maxMsat: 2_000_000n, payer, wallet: Wallet.open(file) });
 */
export { XConnection, CLIENT_PROTOCOL_VERSION, type ConnectOptions } from './connection.js';
export { SellerClient } from './seller.js';
export { XRequests, type XAnswer } from './requests.js';
export { BuyerError, type BuyerErrorCode } from './errors.js';
export { buy, presentCredential, priceOf, storeGrant, type BuyOptions, type BuyStep } from './purchase.js';
export { checkInvoice, type CheckedInvoice } from './invoice-check.js';
export { Wallet, sellerId, type StoredCredential, type Purchase, type PurchaseState } from './wallet.js';
export { decide, type BudgetPolicy, type BudgetDecision } from './budget.js';
export * from './payers/index.js';
export { X_FEATURE, decodeHello, type Hello, type Offer, type OffersAnswer, type GrantAnswer, type BalanceAnswer, type InvoiceAnswer, refuseReason, type RefuseReason } from './protocol.js';
