import type * as net from 'node:net';
import { PeerSession, type SessionHost, type SessionSettings } from './peer-session.js';
import type { V2Opening } from './transport/v2/dial.js';

/**
 * A connection our own node opened to a peer, relayed by the proxy: the same pipeline as an
 * inbound peer with the roles of the two sockets swapped. `node` is the socket our node
 * connected on (a later issue accepts it through a SOCKS5 front), `remote` the proxy's
 * connection to the peer our node asked for. Our node speaks first, so its first bytes decide
 * the transport; hooks see the peer's frames as `inbound` and our node's as `outbound`, as for
 * any peer; our node's version keeps its addrRecv (it knows whom it dialled).
 *
 * With `v2` (from dialPeer: the remote answered our BIP324 opening) the proxy is the v2
 * initiator toward the remote and our node speaks v1 to the proxy.
 */
export class OutboundSession extends PeerSession {
  constructor(id: number, node: net.Socket, remote: net.Socket, address: string, settings: SessionSettings, host: SessionHost, v2: V2Opening | null = null) {
    super(id, remote, node, address, settings, host, null, 'outbound');
    if (v2) this.speakV2('initiator', v2);
  }
}
