/**
 * A tiny TCP relay used ONLY to record fixtures: it listens on 127.0.0.1, opens one connection to
 * the target per accepted client, pipes both ways without touching a byte, and keeps a copy of
 * every byte per direction. Not a proxy under test; it has no limits and no codec.
 */
import net from 'node:net';

export interface RecordedConnection {
  /** order of acceptance, from 0 */
  readonly index: number;
  /** bytes the client sent to the target, in order */
  readonly clientToTarget: Buffer[];
  /** bytes the target sent to the client, in order */
  readonly targetToClient: Buffer[];
  /** set when both sockets are closed */
  closed: boolean;
}

export class TcpRecorder {
  readonly connections: RecordedConnection[] = [];
  readonly #sockets = new Set<net.Socket>();

  private constructor(
    readonly server: net.Server,
    readonly port: number,
    readonly targetHost: string,
    readonly targetPort: number,
  ) {}

  /** Listen on 127.0.0.1 (a free port unless `listenPort` is given) and relay to target. */
  static async start(targetHost: string, targetPort: number, listenPort = 0): Promise<TcpRecorder> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: listenPort }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const recorder = new TcpRecorder(server, port, targetHost, targetPort);
    server.on('connection', (client) => recorder.#relay(client));
    return recorder;
  }

  /** `127.0.0.1:PORT` to point a node's -connect / outbound at */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Everything recorded on connection `index` in one direction, concatenated. */
  bytes(index: number, direction: 'clientToTarget' | 'targetToClient'): Buffer {
    const connection = this.connections[index];
    if (!connection) throw new Error(`no recorded connection #${index} (have ${this.connections.length})`);
    return Buffer.concat(connection[direction]);
  }

  #relay(client: net.Socket): void {
    const record: RecordedConnection = { index: this.connections.length, clientToTarget: [], targetToClient: [], closed: false };
    this.connections.push(record);
    const target = net.connect({ host: this.targetHost, port: this.targetPort });
    this.#sockets.add(client);
    this.#sockets.add(target);
    client.on('data', (chunk: Buffer) => record.clientToTarget.push(Buffer.from(chunk)));
    target.on('data', (chunk: Buffer) => record.targetToClient.push(Buffer.from(chunk)));
    client.pipe(target);
    target.pipe(client);
    let open = 2;
    const closed = (socket: net.Socket) => () => {
      this.#sockets.delete(socket);
      if (--open === 0) record.closed = true;
    };
    client.on('close', closed(client));
    target.on('close', closed(target));
    client.on('error', () => target.destroy());
    target.on('error', () => client.destroy());
  }

  /** Stop listening and cut every relayed connection. */
  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
