/** Helpers shared by the hook tests: fixture paths, YAML for the `hooks:` list, BIP 434 handshakes. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { X_FEATURE_ID } from '../../src/hooks/index.js';
import { decodeMessage, encodeMessage, type Frame, type VersionMessage } from '../../src/codec/index.js';
import type { Litecoind, PeerInfo } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import type { TestProxy } from '../support/proxy-harness.js';
import { waitFor } from '../support/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Absolute path of a compiled fixture hook module (dist/test/hooks/fixtures/NAME.js). */
export function fixture(name: string): string {
  return path.join(here, 'fixtures', `${name}.js`);
}

/** A `hooks:` list for the test YAML; JSON is YAML flow syntax. */
export function hooksYaml(entries: { module: string; options?: Record<string, unknown> }[]): string {
  return ['hooks:', ...entries.map((e) => `  - { module: ${JSON.stringify(e.module)}, options: ${JSON.stringify(e.options ?? {})} }`)].join('\n');
}

export interface PeerOptions {
  version?: number;
  /** BIP 434 feature ids to send between our version and our verack */
  features?: string[];
  localAddress?: string;
}

/**
 * Connect and do the handshake; with `features`, send a `feature` message for each right after
 * our version (before verack), as BIP 434 says. Returns the client and the frames that
 * arrived up to and including the proxy's verack.
 */
export async function connectPeer(port: number, o: PeerOptions = {}): Promise<{ client: P2PClient; theirVersion: VersionMessage; handshake: Frame[] }> {
  const client = await P2PClient.connect(port, o.localAddress ? { localAddress: o.localAddress } : {});
  client.socket.on('error', () => {});
  client.send('version', client.versionMessage({ version: o.version ?? 70016 }));
  for (const id of o.features ?? []) client.send('feature', { featureId: id, data: Buffer.from('client') });
  const v = await client.waitFor('version');
  client.send('verack', {});
  await client.waitFor('verack');
  return { client, theirVersion: decodeMessage('version', v.payload), handshake: [...client.frames] };
}

/** A peer that announced the proxy's x: feature (protocol 70017). */
export function connectXPeer(port: number, localAddress?: string) {
  return connectPeer(port, { version: 70017, features: [X_FEATURE_ID], ...(localAddress ? { localAddress } : {}) });
}

/** The proxy's session of this client (matched by the client's local port). */
export function sessionOf(proxy: TestProxy, client: P2PClient) {
  const s = proxy.proxy.sessions().find((x) => x.info.port === client.socket.localPort);
  if (!s) throw new Error(`no session for client port ${client.socket.localPort}`);
  return s;
}

/** litecoind's getpeerinfo entry for this client's session (matched by the proxy's backend port). */
export async function backendPeer(node: Litecoind, proxy: TestProxy, client: P2PClient): Promise<PeerInfo> {
  const port = sessionOf(proxy, client).info.backendLocalPort;
  return waitFor(async () => (await node.getPeerInfo()).find((p) => p.addr === `127.0.0.1:${port}`), 5000, `litecoind to list the proxied peer 127.0.0.1:${port}`);
}

/** Ping with this nonce and wait for its pong (so everything sent before has been handled). */
export async function pingRoundTrip(client: P2PClient, nonce: bigint, timeoutMs = 5000): Promise<void> {
  const from = client.frames.length;
  client.send('ping', { nonce });
  await client.waitFor('pong', timeoutMs, (f) => decodeMessage('pong', f.payload).nonce === nonce, from);
}

export function pingHex(nonce: bigint): string {
  return encodeMessage('ping', { nonce }).toString('hex');
}

/** Invocation count of a hook: bhp_hook_calls_total{hook} (the latency histogram is sampled). */
export async function invocations(proxy: TestProxy, hook: string): Promise<number> {
  const m = await proxy.metrics.registry.getSingleMetric('bhp_hook_calls_total')?.get();
  return m?.values.find((x) => x.labels.hook === hook)?.value ?? 0;
}
