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

/**
 * The PeerInfo of a session. Its two maps are made on first use: most peers never announce a
 * feature or meet a hook that keeps state, and two empty Maps are about 400 bytes a peer.
 */
export class SessionInfo implements PeerInfo {
  backendLocalPort: number | null = null;
  readonly connectedAt = Date.now();
  version: number | null = null;
  services: bigint | null = null;
  userAgent: string | null = null;
  startHeight: number | null = null;
  relay: boolean | null = null;
  handshakeComplete = false;
  bytesIn = 0;
  bytesOut = 0;
  messagesIn = 0;
  messagesOut = 0;
  misbehaviour = 0;
  priority = false;
  reserved = false;
  #features: Map<string, Buffer> | null = null;
  #state: Map<string, unknown> | null = null;

  constructor(
    readonly id: number,
    readonly address: string,
    readonly port: number,
    public transport: PeerInfo['transport'],
  ) {}

  get features(): Map<string, Buffer> {
    return (this.#features ??= new Map());
  }

  get state(): Map<string, unknown> {
    return (this.#state ??= new Map());
  }
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
