import type * as net from 'node:net';

/** Bind `server` to one endpoint (IPv6 hosts only on IPv6); rejects with the listen error (EADDRINUSE, ...). */
export function listenOn(server: net.Server, ep: { host: string; port: number }): Promise<net.AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: ep.host, port: ep.port, ipv6Only: ep.host.includes(':') }, () => {
      server.off('error', reject);
      resolve(server.address() as net.AddressInfo);
    });
  });
}
