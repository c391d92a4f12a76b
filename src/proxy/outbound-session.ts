import type * as net from 'node:net';
import { PeerSession, type SessionHost, type SessionSettings } from './peer-session.js';

/**
 * A connection our own node opened to a peer, relayed by the proxy: the same pipeline as an
 * inbound peer with the roles of the two sockets swapped. `node` is the socket our node
 * connected on (a later issue accepts it through a SOCKS5 front), `remote` the proxy's
 * connection to the peer our node asked for. Our node speaks first, so its first bytes decide
 * the transport; hooks see the peer's frames as `inbound` and our node's as `outbound`, as for
 * any peer; our node's version keeps its addrRecv (it knows whom it dialled).
 */
export class OutboundSession extends PeerSession {
  constructor(id: number, node: net.Socket, remote: net.Socket, address: string, settings: SessionSettings, host: SessionHost) {
    super(id, remote, node, address, settings, host, null, 'outbound');
  }
}
