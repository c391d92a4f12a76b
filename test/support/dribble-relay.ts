import net from 'node:net';

export interface DribbleRelay {
  port: number;
  close(): Promise<void>;
}

/**
 * A loopback TCP relay to `targetPort` that passes what its clients send on in pieces of 1 to
 * `maxPiece` bytes, `delayMs` apart (Nagle off: each piece its own segment), pieces drawn from
 * `seed`; the answers come back as they are. For any protocol: put it between a v2 initiator
 * and the proxy to cut the ciphertext anywhere.
 */
export async function startDribbleRelay(targetPort: number, opts: { maxPiece: number; delayMs: number; seed: number }): Promise<DribbleRelay> {
  let rng = opts.seed >>> 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const target = net.connect({ host: '127.0.0.1', port: targetPort, noDelay: true });
    for (const s of [client, target]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        target.destroy();
      });
    }
    target.pipe(client);
    const queue: Buffer[] = [];
    let pumping = false;
    const pump = async () => {
      pumping = true;
      while (queue.length > 0 && !target.destroyed) {
        const bytes = queue.shift()!;
        for (let off = 0; off < bytes.length && !target.destroyed; ) {
          rng = (Math.imul(rng, 1103515245) + 12345) >>> 0;
          const n = 1 + ((rng >>> 8) % opts.maxPiece);
          target.write(bytes.subarray(off, off + n));
          off += n;
          await new Promise((r) => setTimeout(r, opts.delayMs));
        }
      }
      pumping = false;
    };
    client.on('data', (chunk: Buffer) => {
      queue.push(chunk);
      if (!pumping) void pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
