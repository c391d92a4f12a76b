/**
 * A worker's store (`workers: N`): everything goes to the primary over the cluster IPC channel,
 * and the primary holds the real store (local memory and ban file, or Redis). Bans made here
 * are sent up; bans from the primary (made by another worker, the admin API or another proxy)
 * come down and land in this worker's BanList, which is all its accept path reads.
 */
import type { HookStore, StoreTtl } from '../hooks/api.js';
import { StoreUnavailableError } from '../hooks/memory-store.js';
import type { Ban } from '../proxy/ban-list.js';
import type { RefuseReason } from '../proxy/observer.js';
import type { SlotGate } from '../proxy/proxy-server.js';
import type { BanSink, ProxyStore } from './store.js';

/** Messages between primary and workers; `bhp` tells them from other IPC traffic. */
export type ToPrimary =
  | { bhp: 'hello' }
  | { bhp: 'ban'; ban: Ban }
  | { bhp: 'unban'; subnet: string }
  | { bhp: 'kv'; id: number; ns: string; op: KvOp; args: unknown[] }
  | { bhp: 'reply'; id: number; value: unknown }
  /** a per-address slot for a new connection (limits counted over every worker) */
  | { bhp: 'slot'; id: number; address: string }
  | { bhp: 'unslot'; address: string };

export type ToWorker =
  | { bhp: 'shared-ban'; ban: Ban }
  | { bhp: 'shared-unban'; subnet: string }
  | { bhp: 'store-up'; up: boolean }
  | { bhp: 'slot-reply'; id: number; refused: RefuseReason | null }
  | { bhp: 'kv-reply'; id: number; ok: true; value: unknown }
  | { bhp: 'kv-reply'; id: number; ok: false; name: string; message: string }
  /** the primary asks: peers, readiness, reload, metrics */
  | { bhp: 'ask'; id: number; what: WorkerQuestion };

/** What the primary asks its workers (answered with a `reply` of the same id). */
export type WorkerQuestion = 'peers' | 'ready' | 'reload' | 'metrics';

export type KvOp = 'get' | 'set' | 'setNX' | 'incrBy' | 'delete' | 'expire';

export interface IpcChannel {
  send(message: ToPrimary): void;
  on(event: 'message', listener: (message: unknown) => void): void;
}

export function isToWorker(m: unknown): m is ToWorker {
  return typeof m === 'object' && m !== null && typeof (m as { bhp?: unknown }).bhp === 'string';
}

export class IpcStore implements ProxyStore, SlotGate {
  /** 'primary' when the primary holds Redis (its outages are reported); 'local' otherwise */
  readonly kind: 'primary' | 'local';
  #up = true;
  #sink: BanSink | null = null;
  #nextId = 1;
  readonly #calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #slots = new Map<number, (refused: RefuseReason | null) => void>();

  /** `shared`: the primary's store is Redis (other proxies see the keys); a local one is memory only */
  constructor(
    readonly channel: IpcChannel,
    readonly shared: boolean,
  ) {
    this.kind = shared ? 'primary' : 'local';
    channel.on('message', (m) => {
      if (!isToWorker(m)) return;
      if (m.bhp === 'shared-ban') this.#sink?.applySharedBan(m.ban);
      else if (m.bhp === 'shared-unban') this.#sink?.applySharedUnban(m.subnet);
      else if (m.bhp === 'store-up') this.#up = m.up;
      else if (m.bhp === 'slot-reply') {
        this.#slots.get(m.id)?.(m.refused);
        this.#slots.delete(m.id);
      }
      else if (m.bhp === 'kv-reply') {
        const call = this.#calls.get(m.id);
        if (!call) return;
        this.#calls.delete(m.id);
        if (m.ok) call.resolve(m.value);
        else call.reject(m.name === 'StoreUnavailableError' ? new StoreUnavailableError(m.message) : Object.assign(new Error(m.message), { name: m.name }));
      }
    });
  }

  /** the primary's store: for a local one always true */
  get up(): boolean {
    return this.#up;
  }

  attachBans(sink: BanSink): void {
    this.#sink = sink;
    this.channel.send({ bhp: 'hello' }); // the primary answers with every ban in force
  }

  banAdded(ban: Ban): void {
    this.channel.send({ bhp: 'ban', ban });
  }

  banRemoved(subnet: string): void {
    this.channel.send({ bhp: 'unban', subnet });
  }

  acquire(address: string): Promise<RefuseReason | null> {
    return new Promise((resolve) => {
      const id = this.#nextId++;
      this.#slots.set(id, resolve);
      this.channel.send({ bhp: 'slot', id, address });
    });
  }

  release(address: string): void {
    this.channel.send({ bhp: 'unslot', address });
  }

  hookStore(ns: string): HookStore {
    const call = <T>(op: KvOp, ...args: unknown[]): Promise<T> =>
      new Promise((resolve, reject) => {
        const id = this.#nextId++;
        this.#calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
        this.channel.send({ bhp: 'kv', id, ns, op, args });
      });
    return {
      // every worker sees the same keys; `shared` still tells a hook whether they are durable beyond this machine's memory
      shared: this.shared,
      get: (key) => call('get', key),
      set: (key, value, o?: StoreTtl) => call('set', key, value, o),
      setNX: (key, value, o?: StoreTtl) => call('setNX', key, value, o),
      incrBy: (key, delta, o) => call('incrBy', key, delta, o),
      delete: (key) => call('delete', key),
      expire: (key, seconds) => call('expire', key, seconds),
    };
  }

  async close(): Promise<void> {
    for (const c of this.#calls.values()) c.reject(new StoreUnavailableError('the worker is shutting down'));
    this.#calls.clear();
    for (const answer of this.#slots.values()) answer('shutting_down');
    this.#slots.clear();
  }
}
