import type { Logger } from 'pino';
import type { StoreSetting } from '../config.js';
import { LocalStore } from './local-store.js';
import type { ProxyStore } from './store.js';

export type { BanSink, ProxyStore } from './store.js';
export { LocalStore } from './local-store.js';
export type { RedisStore } from './redis-store.js';

/**
 * The store the config names: Redis when `store.redis` is set, else this process's own.
 * ioredis (about 20 MB resident) is loaded only then.
 */
export async function openStore(setting: StoreSetting | null, log: Logger): Promise<ProxyStore> {
  if (!setting) return new LocalStore();
  const { RedisStore } = await import('./redis-store.js');
  const store = new RedisStore(setting, log);
  await store.start();
  return store;
}
