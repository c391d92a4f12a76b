/**
 * HookCostEstimate: what untimed frames are charged to a peer's hook budget. Pure arithmetic on
 * the samples it is given (no sockets, no clock): the proxy-level behaviour is in
 * hook-budget.test.ts against litecoind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHEAP_MS, HookCostEstimate, SAMPLE_EVERY } from '../../src/proxy/hook-cost-estimate.js';

test('untimed frames are charged the median of recent samples: one preempted sample does not multiply', () => {
  const e = new HookCostEstimate();
  for (let i = 0; i < 7; i++) assert.equal(e.sample(0.0001, 0.0002), true);
  assert.equal(e.perFrame, 0.0001);
  // a 40 µs sample (a preemption inside a 100 ns chain): not cheap-looking, so not trusted
  assert.equal(e.sample(0.04, 0.041), false, 'an outlier starts a window of exact timing');
  assert.equal(e.perFrame, 0.0001, 'and does not move the estimate');
  // the window: SAMPLE_EVERY timed frames before untimed ones again
  let timed = 0;
  while (!e.sample(0.0001, 0.0002)) timed++;
  assert.equal(timed, SAMPLE_EVERY);
});

test('a chain that really got costlier moves the estimate; a slow chain is timed on every frame', () => {
  const e = new HookCostEstimate();
  for (let i = 0; i < 7; i++) e.sample(0.0001, 0.0002);
  // 3 µs a frame from now on (a hook started decoding): exact timing, then the median follows
  for (let i = 0; i < 3 * SAMPLE_EVERY; i++) e.sample(0.003, 0.0031);
  assert.equal(e.perFrame, 0.003);
  assert.equal(e.sample(0.003, 0.0031), true, 'steady at the new cost: sampling again');
  assert.equal(e.sample(CHEAP_MS, CHEAP_MS), false, 'over CHEAP_MS: every frame timed');
});
