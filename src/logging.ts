import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };

/** json: one object a line (for journald, Loki, jq); pretty: coloured lines for a person at a terminal. */
export type LogFormat = 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

/** pretty when stdout is a terminal, JSON otherwise (a pipe, a file, systemd, a container). */
export function defaultLogFormat(stream: { isTTY?: boolean } = process.stdout): LogFormat {
  return stream.isTTY ? 'pretty' : 'json';
}

/**
 * Structured logs on stdout (pino): one object a line, with `peer` on connection events.
 * `pretty` renders the same records for a person (pino-pretty, synchronous, in this thread).
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, format: LogFormat = 'json'): Logger {
  const options = { name: 'bitcoin-hook-proxy', level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (format === 'pretty') return pino(options, prettyStream(destination));
  return pino(options, destination ?? pino.destination({ sync: true }));
}

function prettyStream(destination: NodeJS.WritableStream | undefined): PinoPretty.PrettyStream {
  // loaded only for pretty logs (a person at a terminal): a service logging JSON never needs it
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pretty({
    sync: true,
    destination: destination ?? 1,
    colorize: destination === undefined ? Boolean(process.stdout.isTTY) && !process.env.NO_COLOR : false,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname,name',
    singleLine: true,
    // messages may quote what a peer sent (a hook's log line): no terminal escapes reach the screen
    messageFormat: (log, key) => withoutControls(String(log[key] ?? '')),
  });
}

/** Control characters (an ESC starts a terminal escape sequence) as \uXXXX. */
export function withoutControls(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
