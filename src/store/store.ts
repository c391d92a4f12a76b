/**
 * The proxy's state that several proxies (or workers) may share: bans and what hooks keep in
 * ctx.store. Two implementations: LocalStore (this process: memory; bans in the ban file as
 * before) and RedisStore. The relay path never waits on either: bans are applied to the local
 * BanList as they arrive, and the accept check reads only that list.
 */
import type { HookStore } from '../hooks/api.js';
import type { Ban } from '../proxy/ban-list.js';

/** Where shared ban changes land (the proxy server); these do not publish back. */
export interface BanSink {
  applySharedBan(ban: Ban): void;
  applySharedUnban(subnet: string): void;
  /** the bans in force here now */
  localBans(): Ban[];
}

export interface ProxyStore {
  readonly kind: 'local' | 'redis' | 'primary';
  /** false while a shared store is unreachable (traffic flows on local state); always true for local */
  readonly up: boolean;
  /** ctx.store of one hook */
  hookStore(namespace: string): HookStore;
  /** Start keeping `sink`'s bans in sync with the other proxies. */
  attachBans(sink: BanSink): void;
  /** a ban made here (admin, misbehaviour, hook): tell the others; never waits, never throws */
  banAdded(ban: Ban): void;
  banRemoved(subnet: string): void;
  close(): Promise<void>;
}
