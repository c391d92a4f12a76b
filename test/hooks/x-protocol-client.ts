/**
 * A client of the proxy's x: protocol, written from docs/x-protocol.md alone (not from
 * hooks/features.ts): the feature id, the feature data (section 2), x:hello and x:unknown
 * (section 3), and the client's sequence (section 5). Framing and the raw socket come from our
 * codec and the shared test client (test/support/p2p-client.ts); everything x:-specific is
 * parsed here with a plain PayloadReader, so a disagreement between the document and the hook
 * shows up as a failing test.
 */
import { randomBytes } from 'node:crypto';
import { PayloadReader, PayloadWriter, decodeMessage, encodeFrame, type Frame } from '../../src/codec/index.js';
import { P2PClient } from '../support/p2p-client.js';

/** Section 1: every var_str is printable ASCII; a reader rejects the message otherwise. */
function str(r: PayloadReader, what: string): string {
  const v = r.varString(what);
  if (!/^[\x20-\x7e]*$/.test(v)) throw new Error(`${r.command}: ${what} is not printable ASCII: ${JSON.stringify(v)}`);
  return v;
}

/** Section 2: the feature id. */
export const X_PROTOCOL_FEATURE_ID = 'bitcoin-hook-proxy/x/1';

export interface OfferedFeature {
  dataVersion: number;
  /** bit 0: the command list was cut to fit 512 bytes */
  truncated: boolean;
  commands: string[];
}

/** Section 2, feature data format 1. Unknown data_version: only the version is returned. */
export function parseFeatureData(data: Buffer): OfferedFeature {
  const r = new PayloadReader(data, 'feature');
  const dataVersion = r.u8('data_version');
  if (dataVersion !== 1) return { dataVersion, truncated: false, commands: [] };
  const flags = r.u8('flags');
  const n = r.compactSize('command_count');
  const commands: string[] = [];
  for (let i = 0; i < n; i++) commands.push(str(r, 'command'));
  // trailing bytes are ignored
  return { dataVersion, truncated: (flags & 0x01) !== 0, commands };
}

/** Section 3: the x:hello request payload. */
export function helloRequest(nonce: bigint): Buffer {
  return new PayloadWriter(8).u64(nonce).finish();
}

export interface HelloAnswer {
  nonce: bigint;
  helloVersion: number;
  software: string;
  softwareVersion: string;
  hookApiVersion: string;
  network: string;
  modules: { name: string; commands: string[] }[];
  features: string[];
}

/** Section 3: the x:hello answer. */
export function parseHello(payload: Buffer): HelloAnswer {
  const r = new PayloadReader(payload, 'x:hello');
  const nonce = r.u64('nonce');
  const helloVersion = r.u8('hello_version');
  const a: HelloAnswer = { nonce, helloVersion, software: '', softwareVersion: '', hookApiVersion: '', network: '', modules: [], features: [] };
  if (helloVersion !== 1) return a; // "MUST stop reading here"
  a.software = str(r, 'software');
  a.softwareVersion = str(r, 'software_version');
  a.hookApiVersion = str(r, 'hook_api_version');
  a.network = str(r, 'network');
  const moduleCount = r.compactSize('module_count');
  for (let i = 0; i < moduleCount; i++) {
    const name = str(r, 'name');
    const n = r.compactSize('command_count');
    const commands: string[] = [];
    for (let j = 0; j < n; j++) commands.push(str(r, 'command'));
    a.modules.push({ name, commands });
  }
  const featureCount = r.compactSize('feature_count');
  for (let i = 0; i < featureCount; i++) a.features.push(str(r, 'feature'));
  // trailing bytes are ignored
  return a;
}

/** Section 3: x:unknown. */
export function parseUnknown(payload: Buffer): string {
  const r = new PayloadReader(payload, 'x:unknown');
  const command = str(r, 'command');
  r.end();
  return command;
}

/** Section 2: a `feature` payload (var_str id, CompactSize length + data), written from BIP 434. */
export function featurePayload(id: string, data: Buffer = Buffer.alloc(0)): Buffer {
  return new PayloadWriter(id.length + data.length + 6).varString(id).varBytes(data).finish();
}

export interface XClientOptions {
  /** protocol version to announce (section 5 step 1: 70017 or higher) */
  version?: number;
  /**
   * When to send the `feature` messages: `true` (default), as section 5 says, after reading the
   * proxy's version and only if it says 70017+; `'early'` right after our own version, before
   * reading the proxy's (section 2 says the proxy accepts it); `false`: not at all.
   */
  announce?: boolean | 'early';
  /** the `feature` payloads to send (default: one, our id with empty data) */
  features?: Buffer[];
  /** called after the announcement and before our verack (to send what a client must not) */
  beforeVerack?: (p2p: P2PClient) => void;
  localAddress?: string;
}

/** Section 5: connect, announce, find the proxy's feature between version and verack, finish the handshake. */
export class XClient {
  /** the proxy's `feature bitcoin-hook-proxy/x/1`, or null when it sent none */
  offered: OfferedFeature | null = null;
  /** commands of the frames received from the proxy's version up to and including its verack */
  handshake: string[] = [];
  /** the protocol version in the proxy's `version` */
  theirVersion = 0;

  private constructor(readonly p2p: P2PClient) {}

  static async connect(port: number, o: XClientOptions = {}): Promise<XClient> {
    const p2p = await P2PClient.connect(port, o.localAddress ? { localAddress: o.localAddress } : {});
    p2p.socket.on('error', () => {});
    const c = new XClient(p2p);
    const announce = () => {
      for (const f of o.features ?? [featurePayload(X_PROTOCOL_FEATURE_ID)]) c.sendX('feature', f);
    };
    p2p.send('version', p2p.versionMessage({ version: o.version ?? 70017 }));
    if (o.announce === 'early') announce();
    const version = await p2p.waitFor('version');
    c.theirVersion = decodeMessage('version', version.payload).version;
    // BIP 434: no `feature` to a peer below 70017
    if ((o.announce ?? true) === true && c.theirVersion >= 70017) announce();
    o.beforeVerack?.(p2p);
    p2p.send('verack', {});
    const verack = await p2p.waitFor('verack');
    const from = p2p.frames.indexOf(version);
    const to = p2p.frames.indexOf(verack);
    const between = p2p.frames.slice(from, to + 1);
    c.handshake = between.map((f) => f.command);
    for (const f of between.filter((x) => x.command === 'feature')) {
      const m = decodeMessage('feature', f.payload);
      if (m.featureId === X_PROTOCOL_FEATURE_ID) c.offered = parseFeatureData(m.data);
    }
    return c;
  }

  /** Send x:hello with a nonce and wait for the answer that echoes it. */
  async hello(nonce: bigint = randomBytes(8).readBigUInt64LE(0), timeoutMs = 5000): Promise<HelloAnswer> {
    const from = this.p2p.frames.length;
    this.sendX('x:hello', helloRequest(nonce));
    const f = await this.p2p.waitFor('x:hello', timeoutMs, (x) => x.payload.length >= 8 && x.payload.readBigUInt64LE(0) === nonce, from);
    return parseHello(f.payload);
  }

  /** Send any frame (x: or not) with a raw payload. */
  sendX(command: string, payload: Buffer): void {
    this.p2p.sendRaw(encodeFrame(this.p2p.network, command, payload).raw);
  }

  /** every x: frame received so far */
  xFrames(): Frame[] {
    return this.p2p.frames.filter((f) => f.command.startsWith('x:'));
  }

  close(): Promise<void> {
    return this.p2p.close();
  }
}
