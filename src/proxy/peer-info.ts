/** What the proxy knows of one proxied peer; admin API and hooks read it. */
export interface PeerInfo {
  id: number;
  /** the peer's real address, as bitcoind cannot see it */
  address: string;
  port: number;
  /** local port of our connection to bitcoind: what `bitcoin-cli getpeerinfo` shows as 127.0.0.1:PORT */
  backendLocalPort: number | null;
  connectedAt: number;
  transport: 'detecting' | 'v1' | 'v2' | 'v2-passthrough';
  /** from the peer's version message */
  version: number | null;
  services: bigint | null;
  userAgent: string | null;
  startHeight: number | null;
  relay: boolean | null;
  /** both veracks seen */
  handshakeComplete: boolean;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  misbehaviour: number;
  /** a hook marked it as holding a paid tier (ctx.setPriority): never evicted */
  priority: boolean;
  /** admitted into one of the reserved slots beyond limits.maxPeers */
  reserved: boolean;
  /** BIP 434 features the peer announced: feature id → data */
  features: Map<string, Buffer>;
  /** per-peer state shared by hooks */
  state: Map<string, unknown>;
}

export function peerInfoJson(p: PeerInfo): Record<string, unknown> {
  const { state, features, ...rest } = p;
  return {
    ...rest,
    services: p.services === null ? null : `0x${p.services.toString(16)}`,
    connectedAt: new Date(p.connectedAt).toISOString(),
    features: [...features.keys()],
    state: Object.fromEntries([...state].filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v))),
  };
}
