/**
 * Outbound mode for tests: startOutbound (the SOCKS5 front plus the buyer) beside a running test
 * proxy, sharing its settings, chain, logs and metrics as app.ts will. `yaml` is the `outbound:`
 * mapping without `socks.listen`, which gets a free loopback port.
 */
import { parse } from 'yaml';
import type { Payer } from '../../src/client/index.js';
import { outboundSchema } from '../../src/config.js';
import { startOutbound, type RunningOutbound } from '../../src/outbound.js';
import { freePort } from '../support/ports.js';
import type { TestProxy } from '../support/proxy-harness.js';

export interface TestOutbound extends RunningOutbound {
  port: number;
}

export async function startTestOutbound(proxy: TestProxy, yaml: string, baseDir: string, payer?: Payer): Promise<TestOutbound> {
  const port = await freePort();
  const raw = (parse(yaml) ?? {}) as Record<string, unknown>;
  const socks = { ...(raw.socks as object | undefined), listen: `127.0.0.1:${port}` };
  const config = outboundSchema.parse({ ...raw, socks });
  const running = await startOutbound(config, {
    session: () => proxy.proxy.settings,
    chain: () => proxy.proxy.chain,
    log: proxy.log,
    observer: proxy.metrics,
    hookObserver: proxy.metrics,
    logger: (hook) => {
      const l = proxy.log.child({ hook });
      return { debug: (m, f) => l.debug(f ?? {}, m), info: (m, f) => l.info(f ?? {}, m), warn: (m, f) => l.warn(f ?? {}, m), error: (m, f) => l.error(f ?? {}, m) };
    },
    metrics: () => proxy.metrics.hookMetrics(),
    baseDir,
    attach: (sessions) => proxy.proxy.attachSessions(sessions),
    ...(payer ? { payer } : {}),
  });
  return Object.assign(running, { port });
}
