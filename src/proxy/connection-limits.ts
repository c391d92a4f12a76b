import { subnetKey } from './address.js';
import type { RefuseReason } from './observer.js';

export interface LimitSettings {
  maxPeers: number;
  /** slots beyond maxPeers for peers a hook marks as paid (see ProxyServer's reserve) */
  reservedPeers: number;
  maxPeersPerAddress: number;
  maxPeersPerSubnet: number;
}

export type Slot = 'regular' | 'reserved';

/** Live counts of sessions per address and per /24 (IPv4) or /64 (IPv6), and of the slots they hold. */
export class ConnectionLimits {
  #total = 0;
  /** of #total, how many hold a reserved slot */
  #reserved = 0;
  readonly #perAddress = new Map<string, number>();
  readonly #perSubnet = new Map<string, number>();

  constructor(public settings: LimitSettings) {}

  get total(): number {
    return this.#total;
  }

  get reserved(): number {
    return this.#reserved;
  }

  /**
   * Why `address` may not connect now, or null when it may. `max_peers` (regular and reserved
   * slots all taken) comes last: it alone may be solved by eviction.
   */
  check(address: string): RefuseReason | null {
    const s = this.settings;
    // per-address and per-subnet first: those refusals never evict anyone
    if ((this.#perAddress.get(address) ?? 0) >= s.maxPeersPerAddress) return 'max_per_address';
    if ((this.#perSubnet.get(subnetKey(address)) ?? 0) >= s.maxPeersPerSubnet) return 'max_per_subnet';
    if (this.slot() === null) return 'max_peers';
    return null;
  }

  /** The slot a new peer would get: a regular one while any is free, then a reserved one. */
  slot(): Slot | null {
    if (this.#total - this.#reserved < this.settings.maxPeers) return 'regular';
    if (this.#reserved < this.settings.reservedPeers) return 'reserved';
    return null;
  }

  acquire(address: string, slot: Slot = 'regular'): void {
    this.#total++;
    if (slot === 'reserved') this.#reserved++;
    bump(this.#perAddress, address, 1);
    bump(this.#perSubnet, subnetKey(address), 1);
  }

  release(address: string, slot: Slot = 'regular'): void {
    this.#total--;
    if (slot === 'reserved') this.#reserved--;
    bump(this.#perAddress, address, -1);
    bump(this.#perSubnet, subnetKey(address), -1);
  }

  /** Move one holder of a reserved slot to a regular slot, if one is free. */
  toRegular(): boolean {
    if (this.#reserved === 0 || this.#total - this.#reserved >= this.settings.maxPeers) return false;
    this.#reserved--;
    return true;
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}
