/**
 * BIP324's short message ids (1..28): one byte in place of the 12-byte command. Bitcoin Core
 * (net.cpp V2_MESSAGE_IDS) sends these for the listed commands and the long form (0, then the
 * 12-byte command) for every other one; x: commands always go long.
 */
export const V2_SHORT_IDS: readonly string[] = [
  '', // 0: long form
  'addr',
  'block',
  'blocktxn',
  'cmpctblock',
  'feefilter',
  'filteradd',
  'filterclear',
  'filterload',
  'getblocks',
  'getblocktxn',
  'getdata',
  'getheaders',
  'headers',
  'inv',
  'mempool',
  'merkleblock',
  'notfound',
  'ping',
  'pong',
  'sendcmpct',
  'tx',
  'getcfilters',
  'cfilter',
  'getcfheaders',
  'cfheaders',
  'getcfcheckpt',
  'cfcheckpt',
  'addrv2',
];

const BY_COMMAND = new Map<string, number>(V2_SHORT_IDS.map((c, i) => [c, i] as [string, number]).filter(([c]) => c !== ''));

/** The short id of `command`, or 0 when it goes in long form. */
export function shortIdOf(command: string): number {
  return BY_COMMAND.get(command) ?? 0;
}

/** The command of short id `id`, or null for an id the table does not assign (Core drops such a message). */
export function commandOfShortId(id: number): string | null {
  return id > 0 && id < V2_SHORT_IDS.length ? V2_SHORT_IDS[id]! : null;
}
