/**
 * A v1 ↔ BIP324 v2 bridge for tests: a loopback listener that, for every v1 connection it
 * accepts, dials `target` as a v2 initiator (dialPeer, with its v1 fallback) and carries frames
 * across with the proxy's own V2Connection. No session and no hooks in between, so any v1 test
 * client (P2PClient, XClient, a real node) talks to the target over v2, x: messages included.
 */
import * as net from 'node:net';
import { FrameDecoder, type Network } from '../../src/codec/index.js';
import { V2Connection, wholeFrames, type V2FailReason } from '../../src/proxy/transport/v2/connection.js';
import { dialPeer } from '../../src/proxy/transport/v2/dial.js';

export interface V2Bridge {
  port: number;
  /** per accepted connection: the v2 link (null when it fell back to v1) */
  links: (V2Connection | null)[];
  failures: V2FailReason[];
  close(): Promise<void>;
}

export async function startV2Bridge(targetPort: number, network: Network): Promise<V2Bridge> {
  const links: (V2Connection | null)[] = [];
  const failures: V2FailReason[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true }, (local) => {
    sockets.add(local);
    local.on('error', () => {});
    void dialPeer({ host: '127.0.0.1', port: targetPort, v2: true, timeoutMs: 10_000 }).then(
      ({ socket: remote, v2 }) => {
        sockets.add(remote);
        remote.on('error', () => {});
        const end = () => {
          local.destroy();
          remote.destroy();
        };
        local.on('close', end);
        remote.on('close', end);
        if (!v2) {
          links.push(null);
          local.pipe(remote).pipe(local);
          local.resume();
          remote.resume();
          return;
        }
        const link = new V2Connection({
          role: 'initiator',
          network,
          socket: remote,
          maxMessageSize: 4_000_000,
          key: v2.key,
          garbage: v2.garbage,
          opened: true,
          events: { ready: () => {}, failed: (r) => (failures.push(r), end()), dropped: () => {} },
        });
        links.push(link);
        const out = link.writer(remote);
        const reader = link.reader(wholeFrames((f) => void local.write(f.raw)));
        const decoder = new FrameDecoder({ network }, { onFrame: (f) => out.frame(f.raw), onError: () => end() });
        local.on('data', (c: Buffer) => decoder.push(c));
        remote.on('data', (c: Buffer) => reader.push(c));
        local.resume();
        remote.resume();
      },
      () => local.destroy(),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    links,
    failures,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
