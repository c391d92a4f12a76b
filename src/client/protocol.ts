/**
 * The x: messages a buyer reads and writes. Discovery (`feature` data, x:hello) follows
 * docs/x-protocol.md sections 2 and 4.1; paid access (x:offers … x:refuse) follows
 * docs/x-protocol.md §4.3 and reuses the seller's codec, which implements that document both ways.
 */
import { PayloadReader, PayloadWriter } from '../codec/index.js';
export * from '../../hooks/paywall/protocol.js';

/** BIP 434 feature id of the x: protocol (docs/x-protocol.md §2). */
export const X_FEATURE = 'bitcoin-hook-proxy/x/1';

/** §1.5: every var_str of the protocol is printable ASCII. */
function str(r: PayloadReader, what: string): string {
  const v = r.varString(what);
  if (!/^[\x20-\x7e]*$/.test(v)) r.fail('INVALID', `${what} is not printable ASCII`);
  return v;
}

/** The proxy's feature data, format 1 (§2). null for a data_version this client does not know. */
export function parseFeatureData(data: Buffer): { truncated: boolean; commands: string[] } | null {
  const r = new PayloadReader(data, 'feature');
  if (r.u8('data_version') !== 1) return null;
  const flags = r.u8('flags');
  const n = r.compactSize('command_count', 512);
  const commands: string[] = [];
  for (let i = 0; i < n; i++) commands.push(str(r, 'command'));
  return { truncated: (flags & 1) !== 0, commands };
}

export interface Hello {
  nonce: bigint;
  software: string;
  softwareVersion: string;
  hookApiVersion: string;
  network: string;
  modules: { name: string; commands: string[] }[];
  /** the feature ids the proxy recorded from us */
  features: string[];
}

export const encodeHelloRequest = (nonce: bigint): Buffer => new PayloadWriter(8).u64(nonce).finish();

/** The x:hello answer (§4.1). Throws for a hello_version this client does not know. */
export function decodeHello(payload: Buffer): Hello {
  const r = new PayloadReader(payload, 'x:hello');
  const nonce = r.u64('nonce');
  const v = r.u8('hello_version');
  if (v !== 1) r.fail('INVALID', `hello_version ${v} is not 1`);
  const h: Hello = { nonce, software: str(r, 'software'), softwareVersion: str(r, 'software_version'), hookApiVersion: str(r, 'hook_api_version'), network: str(r, 'network'), modules: [], features: [] };
  const m = r.compactSize('module_count', 1000);
  for (let i = 0; i < m; i++) {
    const name = str(r, 'name');
    const n = r.compactSize('command_count', 1000);
    const commands: string[] = [];
    for (let j = 0; j < n; j++) commands.push(str(r, 'command'));
    h.modules.push({ name, commands });
  }
  const f = r.compactSize('feature_count', 64);
  for (let i = 0; i < f; i++) h.features.push(str(r, 'feature'));
  return h;
}
