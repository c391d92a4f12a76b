/**
 * Dispatch point of the buyer commands (the x: protocol client: list a proxy's offers, buy
 * access, keep credentials). Their module replaces this file: keep the names, give each its
 * options and summary in BUYER_COMMANDS (for --help and completion), and implement
 * runBuyerCommand, which gets argv as typed after the command's name (--help never reaches it).
 */
import { CliError, type CommandSpec } from './spec.js';

export const BUYER_COMMAND_NAMES = ['offers', 'buy', 'credentials'] as const;
export type BuyerCommand = (typeof BUYER_COMMAND_NAMES)[number];

export const BUYER_COMMANDS: readonly CommandSpec[] = [
  { name: 'offers', summary: "list what a proxy sells over the x: protocol (not available in this build)", options: {}, raw: (argv) => runBuyerCommand('offers', argv) },
  { name: 'buy', summary: 'buy access from a proxy, paying over Lightning (not available in this build)', options: {}, raw: (argv) => runBuyerCommand('buy', argv) },
  { name: 'credentials', summary: 'show or remove stored access credentials (not available in this build)', options: {}, raw: (argv) => runBuyerCommand('credentials', argv) },
];

export function runBuyerCommand(cmd: BuyerCommand, argv: string[]): Promise<number> {
  void argv;
  return Promise.reject(new CliError(`${cmd}: not available in this build (the x: protocol client commands are not wired in yet)`));
}
