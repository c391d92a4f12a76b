import { subnetKey } from './address.js';
import type { RefuseReason } from './observer.js';

export interface LimitSettings {
  maxPeers: number;
  maxPeersPerAddress: number;
  maxPeersPerSubnet: number;
}

/** Live counts of sessions per address and per /24 (IPv4) or /64 (IPv6). */
export class ConnectionLimits {
  #total = 0;
  readonly #perAddress = new Map<string, number>();
  readonly #perSubnet = new Map<string, number>();

  constructor(public settings: LimitSettings) {}

  get total(): number {
    return this.#total;
  }

  /** Why `address` may not connect now, or null when it may. `max_peers` comes last: it alone may be solved by eviction. */
  check(address: string): RefuseReason | null {
    const s = this.settings;
    // per-address and per-subnet first: those refusals never evict anyone
    if ((this.#perAddress.get(address) ?? 0) >= s.maxPeersPerAddress) return 'max_per_address';
    if ((this.#perSubnet.get(subnetKey(address)) ?? 0) >= s.maxPeersPerSubnet) return 'max_per_subnet';
    if (this.#total >= s.maxPeers) return 'max_peers';
    return null;
  }

  acquire(address: string): void {
    this.#total++;
    bump(this.#perAddress, address, 1);
    bump(this.#perSubnet, subnetKey(address), 1);
  }

  release(address: string): void {
    this.#total--;
    bump(this.#perAddress, address, -1);
    bump(this.#perSubnet, subnetKey(address), -1);
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}
