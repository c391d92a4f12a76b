/**
 * Stub of the buyer commands (offers, buy, credentials: the x: protocol client). The buyer
 * module replaces this file with the same export; src/cli/buyer-commands.ts describes the
 * commands for --help and completion and calls runBuyerCommand(cmd, argv).
 */
import { CliError } from './spec.js';

export async function runBuyerCommand(cmd: string, argv: string[]): Promise<number> {
  void argv;
  throw new CliError(`${cmd}: not available in this build (the x: protocol client commands are not wired in yet)`);
}
