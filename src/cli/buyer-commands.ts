/**
 * The buyer commands (the x: protocol client) as the command table sees them: names, options
 * and arguments for --help and completion. Their module, src/cli/buyer.ts, parses its own
 * arguments: runBuyerCommand(cmd, argv) gets argv as typed after the name (--help never reaches it).
 */
import { NETWORKS } from '../codec/index.js';
import type { CommandSpec, OptionSpec } from './spec.js';

const NETWORK: OptionSpec = { type: 'string', arg: 'NAME', choices: Object.keys(NETWORKS), help: 'the network the proxy serves (default mainnet)' };
const JSON_OUT: OptionSpec = { type: 'boolean', help: 'print JSON instead of text' };
const WALLET: OptionSpec = { type: 'string', arg: 'FILE', file: true, help: 'the credentials wallet file' };
const PROXY = [{ name: 'HOST:PORT', required: true }];

export const BUYER_COMMANDS: readonly CommandSpec[] = [
  {
    name: 'offers',
    summary: 'list what a proxy sells over the x: protocol',
    args: PROXY,
    options: { network: NETWORK, json: JSON_OUT },
    raw: (argv) => runBuyer('offers', argv),
  },
  {
    name: 'buy',
    summary: 'buy a tier or credit from a proxy, paying over Lightning',
    args: PROXY,
    options: {
      tier: { type: 'string', arg: 'TIER', help: 'the tier to buy (with --max-sats)' },
      credit: { type: 'string', arg: 'SATS', help: 'metered credit to buy' },
      'max-sats': { type: 'string', arg: 'N', help: 'the most to pay' },
      config: { type: 'string', arg: 'FILE', file: true, help: 'the proxy config whose outbound: section names the payer and wallet' },
      wallet: WALLET,
      network: NETWORK,
      json: JSON_OUT,
    },
    raw: (argv) => runBuyer('buy', argv),
  },
  {
    name: 'credentials',
    summary: 'show the stored access credentials',
    options: { wallet: WALLET, refresh: { type: 'boolean', help: 'present them again to refresh' }, network: NETWORK, json: JSON_OUT },
    raw: (argv) => runBuyer('credentials', argv),
  },
];

/** The buyer's side (client, payers, BOLT11 decoding) is loaded only by its commands, not by `run`. */
async function runBuyer(cmd: string, argv: string[]): Promise<number> {
  return (await import('./buyer.js')).runBuyerCommand(cmd, argv);
}
