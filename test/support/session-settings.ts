/** SessionSettings for tests that build a PeerSession/OutboundSession directly (no config file): the config's defaults, no hook budget. */
import { NETWORKS } from '../../src/codec/index.js';
import type { SessionSettings } from '../../src/proxy/peer-session.js';

export function testSessionSettings(overrides: Partial<SessionSettings> = {}): SessionSettings {
  return {
    network: NETWORKS.regtest,
    checksum: 'lazy',
    v2: 'reject',
    handshakeTimeout: 30_000,
    idleTimeout: 0,
    maxMessageSize: 4_000_000,
    sendBuffer: 1_000_000,
    receiveBuffer: 5_000_000,
    hookQueue: 1_000_000,
    xUnknown: 'drop',
    hookBudget: null,
    hookBudgetAction: 'throttle',
    logLinesPerMinute: 10,
    ...overrides,
  };
}
