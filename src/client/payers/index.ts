/** Payers by kind, from the options a config or the CLI gives. */
import { createDevPayer, type DevPayerOptions } from './dev.js';
import { createClnPayer, createLndPayer, createLnbitsPayer, createPhoenixdPayer, type ClnPayerOptions, type LndPayerOptions, type LnbitsPayerOptions, type PhoenixdPayerOptions } from './http-payers.js';
import type { Payer } from './types.js';

export * from './types.js';
export { createDevPayer, createClnPayer, createLndPayer, createLnbitsPayer, createPhoenixdPayer };
export type { DevPayerOptions, ClnPayerOptions, LndPayerOptions, LnbitsPayerOptions, PhoenixdPayerOptions };

export type PayerConfig =
  | ({ kind: 'lnd' } & LndPayerOptions)
  | ({ kind: 'cln' } & ClnPayerOptions)
  | ({ kind: 'lnbits' } & LnbitsPayerOptions)
  | ({ kind: 'phoenixd' } & PhoenixdPayerOptions)
  | ({ kind: 'dev' } & DevPayerOptions);

export function createPayer(c: PayerConfig): Payer {
  switch (c.kind) {
    case 'lnd':
      return createLndPayer(c);
    case 'cln':
      return createClnPayer(c);
    case 'lnbits':
      return createLnbitsPayer(c);
    case 'phoenixd':
      return createPhoenixdPayer(c);
    case 'dev':
      return createDevPayer(c);
  }
}
