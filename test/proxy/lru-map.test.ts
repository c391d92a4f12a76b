/**
 * LruMap, the bounded table behind connection-rate buckets and backend-disconnect counts:
 * beyond `max` it forgets the least recently used key, a get() counts as a use, and its size
 * never exceeds `max` whatever the sequence. A data structure: no sockets involved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LruMap } from '../../src/proxy/lru-map.js';
import { filePrng } from '../support/seed.js';

const rand = filePrng(import.meta.url);

test('beyond max the least recently used key goes; get() and set() count as a use', () => {
  const m = new LruMap<string, number>(3);
  m.set('a', 1);
  m.set('b', 2);
  m.set('c', 3);
  assert.equal(m.get('a'), 1); // a is now the most recent: b is the oldest
  m.set('d', 4);
  assert.equal(m.get('b'), undefined, 'b was the least recently used');
  assert.deepEqual([m.get('a'), m.get('c'), m.get('d')], [1, 3, 4]);
  m.set('c', 30); // an update is a use too
  m.set('e', 5);
  assert.equal(m.get('a'), undefined);
  assert.equal(m.get('c'), 30);
  assert.equal(m.size, 3);
  assert.equal(m.delete('c'), true);
  assert.equal(m.size, 2);
});

test('against a reference model: the same keys survive any sequence of gets, sets and deletes', () => {
  const max = 16;
  const m = new LruMap<number, number>(max);
  let model: [number, number][] = []; // oldest first
  for (let i = 0; i < 20_000; i++) {
    const key = Math.floor(rand() * 40);
    const op = rand();
    const at = model.findIndex(([k]) => k === key);
    if (op < 0.45) {
      const got = m.get(key);
      assert.equal(got, at < 0 ? undefined : model[at]![1], `get(${key}) at step ${i}`);
      if (at >= 0) model.push(model.splice(at, 1)[0]!);
    } else if (op < 0.9) {
      m.set(key, i);
      if (at >= 0) model.splice(at, 1);
      model.push([key, i]);
      if (model.length > max) model = model.slice(model.length - max);
    } else {
      assert.equal(m.delete(key), at >= 0);
      if (at >= 0) model.splice(at, 1);
    }
    assert.equal(m.size, model.length);
  }
});
