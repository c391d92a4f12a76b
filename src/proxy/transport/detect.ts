import { guessTransport, v1Prefix, type Network } from '../../codec/index.js';
import { mayStartProxyHeader } from '../proxy-protocol.js';

const EMPTY = Buffer.alloc(0);
/** one v1 prefix per network, not one per connection */
const prefixes = new WeakMap<Network, Buffer>();

/** `terminate`: speak BIP324 v2 with the peer at the proxy (hooks and limits as for v1), v1 to bitcoind. */
export type V2Policy = 'reject' | 'passthrough' | 'terminate';
export type Detected = 'v1' | 'v2' | 'undecided';

/**
 * Which transport the initiator of a connection speaks, judged as bitcoind judges it.
 * Only a node that offers v2 looks: it takes any stream that is not a prefix of the v1
 * `version` header (magic + "version" NUL-padded, 16 bytes) for BIP324 (net.cpp
 * V2Transport::ProcessReceivedMaybeV1Bytes). A node without v2 reads every stream as v1 and
 * judges its header. So with `v2: reject` the proxy offers no v2 and the answer is v1 at once
 * (a peer opening with `ping`, or with another network's magic, then meets bitcoind's own
 * header rules); with `passthrough` and `terminate` it holds up to 16 bytes to decide.
 */
export class TransportDetector {
  #head: Buffer = EMPTY;

  constructor(
    readonly network: Network,
    readonly policy: V2Policy,
  ) {}

  /** Feed the first chunks; `bytes` are the held bytes plus the chunk once decided. */
  feed(chunk: Buffer): { detected: Detected; bytes: Buffer } {
    if (this.policy === 'reject') return { detected: 'v1', bytes: chunk };
    const head = this.#head.length ? Buffer.concat([this.#head, chunk]) : chunk;
    let prefix = prefixes.get(this.network);
    if (!prefix) prefixes.set(this.network, (prefix = v1Prefix(this.network)));
    let detected = guessTransport(head, prefix);
    // a PROXY header split by TCP: its first bytes alone would pass for a v2 key, and the session
    // closes an untrusted one only once it sees the signature (a v2 key comes 64 bytes at once)
    if (detected === 'v2' && mayStartProxyHeader(head)) detected = 'undecided';
    this.#head = detected === 'undecided' ? Buffer.from(head) : EMPTY;
    return { detected, bytes: detected === 'undecided' ? EMPTY : head };
  }
}
