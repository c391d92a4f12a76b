import { createRequire } from 'node:module';

type BitcoinJs = typeof import('bitcoinjs-lib');

let lib: BitcoinJs | null = null;

/**
 * bitcoinjs-lib, loaded the first time a hook asks for a full parse (transaction(), block()):
 * with its dependencies it is about 13 MB of a process that otherwise only skims transactions.
 * Its CommonJS build keeps those calls synchronous.
 */
export function bitcoinjs(): BitcoinJs {
  return (lib ??= createRequire(import.meta.url)('bitcoinjs-lib') as BitcoinJs);
}
