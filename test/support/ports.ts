/**
 * Free TCP ports on 127.0.0.1 for test servers (litecoind P2P/RPC, bcoin, recorders, proxies).
 *
 * The OS picks the port (listen on port 0) and we close the probe socket at once. A port handed
 * out here is remembered for the life of the process and never handed out twice, so two helpers
 * asking in a row cannot get the same number even if neither has bound it yet. A small race
 * with other processes remains (nothing can close it without passing sockets around); it is
 * harmless on a test machine.
 */
import net from 'node:net';

const handedOut = new Set<number>();

function probe(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** One free port on `host` (default 127.0.0.1), never returned twice in this process. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await probe(host);
    if (port > 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`freePort: could not find an unused port on ${host} after 50 attempts`);
}

/** `count` distinct free ports. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort(host));
  return ports;
}
