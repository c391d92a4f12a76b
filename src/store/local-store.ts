import type { HookStore } from '../hooks/api.js';
import { MemoryKv } from '../hooks/memory-store.js';
import type { ProxyStore } from './store.js';

/** One process: hook keys in memory, bans only in the proxy's own ban list and file. */
export class LocalStore implements ProxyStore {
  readonly kind = 'local';
  readonly up = true;
  readonly kv = new MemoryKv();

  hookStore(namespace: string): HookStore {
    return this.kv.namespace(namespace);
  }
  attachBans(): void {}
  banAdded(): void {}
  banRemoved(): void {}
  async close(): Promise<void> {}
}
