/**
 * Hook metrics live beside the proxy's own in one registry: a hook asking for a name that is the
 * proxy's (bhp_hook_errors_total from 'errors_total', bhp_connections) is refused with a message
 * naming it, at load, and the proxy does not start with it; a hook's own name returns the same
 * metric across reloads. Real implementation: prom-client's registry, the real hook loader.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ProxyMetrics } from '../../src/metrics.js';
import { freePort } from '../support/ports.js';
import { startTestProxy } from '../support/proxy-harness.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/metric-clash.js');

test("a hook metric named like the proxy's own is refused; a hook's own metric is shared across loads", async () => {
  const metrics = new ProxyMetrics({ defaultMetrics: false });
  const m = metrics.hookMetrics();
  assert.throws(() => m.counter('errors_total', 'x'), /hook metric "errors_total" would be bhp_hook_errors_total, a metric of the proxy itself/);
  assert.throws(() => m.gauge('bhp_connections', 'x'), /bhp_connections, a metric of the proxy itself/);
  assert.throws(() => m.histogram('invocation_seconds', 'x'), /bhp_hook_invocation_seconds/);
  assert.throws(() => m.gauge('bhp_backend_up', 'x'), /bhp_backend_up/);
  m.counter('mine_total', 'a hook metric', ['k']).inc({ k: 'a' });
  metrics.hookMetrics().counter('mine_total', 'a hook metric', ['k']).inc({ k: 'a' }, 2); // after a reload
  const text = await metrics.registry.metrics();
  assert.match(text, /^bhp_hook_mine_total\{k="a"\} 3$/m);
  assert.doesNotMatch(text, /bhp_hook_errors_total\{/, 'the refused request left the proxy metric alone');
});

test('the proxy refuses to start with a hook whose init takes a proxy metric name, naming the hook and the metric', async () => {
  const backend = await freePort(); // never reached: loading fails first
  await assert.rejects(
    startTestProxy(backend, `hooks: [{ module: ${JSON.stringify(FIXTURE)}, options: { name: errors_total } }]`),
    (err: Error) => /metric-clash/.test(err.message) && /bhp_hook_errors_total/.test(err.message),
  );
});
