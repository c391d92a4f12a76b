/** Builds the configured Lightning backend. */
import { createClnBackend } from './cln.js';
import { createDevBackend } from './dev.js';
import { createLnbitsBackend } from './lnbits.js';
import { createLndBackend } from './lnd.js';
import { createPhoenixdBackend } from './phoenixd.js';
import type { LightningBackend } from './types.js';

export type BackendConfig =
  | { kind: 'dev'; privateKeyHex?: string }
  | { kind: 'lnd'; url: string; macaroonFile: string; tlsCertFile?: string }
  | { kind: 'cln'; url: string; runeFile: string; tlsCertFile?: string }
  | { kind: 'lnbits'; url: string; apiKeyFile: string; tlsCertFile?: string }
  | { kind: 'phoenixd'; url: string; passwordFile: string; tlsCertFile?: string };

export function createBackend(c: BackendConfig, network: string, timeoutMs: number): LightningBackend {
  switch (c.kind) {
    case 'dev':
      return createDevBackend({ network, ...(c.privateKeyHex ? { privateKeyHex: c.privateKeyHex } : {}) });
    case 'lnd':
      return createLndBackend({ ...c, network, timeoutMs });
    case 'cln':
      return createClnBackend({ ...c, network, timeoutMs });
    case 'lnbits':
      return createLnbitsBackend({ ...c, network, timeoutMs });
    case 'phoenixd':
      return createPhoenixdBackend({ ...c, network, timeoutMs });
  }
}

export * from './types.js';
export type { DevBackend } from './dev.js';
