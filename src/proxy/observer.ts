/**
 * What the proxy reports about itself. The metrics module implements it; the proxy never
 * imports metrics (imports flow one way: top-level files wire the two together).
 */
export type Direction = 'inbound' | 'outbound';

export type RefuseReason =
  | 'banned'
  | 'max_peers'
  | 'max_per_address'
  | 'max_per_subnet'
  | 'rate_limited'
  /** an onAccept hook refused it; hook_error: the hook threw, timed out or returned nonsense */
  | 'hook'
  | 'hook_error'
  /** too many connections waiting for onAccept hooks */
  | 'accept_busy'
  | 'backend_down'
  | 'shutting_down'
  /** from a trusted load balancer without a valid PROXY protocol header */
  | 'proxy_protocol';

export type CloseReason =
  | 'peer_closed'
  | 'backend_closed'
  | 'peer_error'
  | 'backend_error'
  | 'handshake_timeout'
  | 'idle_timeout'
  | 'protocol_error'
  | 'banned'
  /** closed to make room for a new peer when every slot was taken */
  | 'evicted'
  /** held a reserved slot and no hook marked it as paid (setPriority) in time */
  | 'reserve_timeout'
  | 'hook'
  | 'hook_error'
  | 'hook_budget'
  | 'admin'
  | 'shutdown';

export interface ProxyObserver {
  connectionAccepted(): void;
  connectionRefused(reason: RefuseReason): void;
  sessionOpened(): void;
  sessionClosed(reason: CloseReason, durationSeconds: number): void;
  /** `count` frames of one command (reported in runs, not one call per frame), `bytes` in all */
  frames(direction: Direction, command: string, count: number, bytes: number): void;
  protocolError(code: string): void;
  backendConnectFailed(): void;
  v2Passthrough(): void;
  /** a BIP324 v2 handshake completed; `role` is the proxy's */
  v2Session(role: 'initiator' | 'responder'): void;
  /** a v2 connection failed and the peer was closed */
  v2Failure(reason: string): void;
  banAdded(reason: string): void;
  bansCurrent(count: number): void;
  misbehaviour(reason: string): void;
  /** a peer used up its hook time budget: throttled or disconnected */
  hookBudgetExceeded(action: 'throttle' | 'disconnect'): void;
  /** a rate-limited log line was written or suppressed (see LogLimiter) */
  logLine(reason: string, outcome: 'written' | 'suppressed'): void;
  /** the SOCKS5 front's counters, to publish at scrape time (called once, when it starts) */
  socksCounts?(counts: SocksCounts): void;
}

/** The SOCKS5 front's plain counters, bumped where things happen, published by whoever scrapes them. */
export interface SocksCounts {
  /** connections taken for negotiation */
  accepted: number;
  /** connections closed at once: maxConnections were open */
  overLimit: number;
  /** requests refused, by SOCKS reply name (replyName: `connection_refused`, ...) */
  refused: Map<string, number>;
  /** negotiations that broke the protocol or timed out */
  protocolErrors: number;
  /** requests that became P2P sessions */
  sessions: number;
  /** negotiations by the method chosen */
  methods: { none: number; userpass: number };
}

export const nullObserver: ProxyObserver = {
  connectionAccepted() {},
  connectionRefused() {},
  sessionOpened() {},
  sessionClosed() {},
  frames() {},
  protocolError() {},
  backendConnectFailed() {},
  v2Passthrough() {},
  v2Session() {},
  v2Failure() {},
  banAdded() {},
  bansCurrent() {},
  misbehaviour() {},
  hookBudgetExceeded() {},
  logLine() {},
};
