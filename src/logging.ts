import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stdout (pino): one object a line, with `peer` on connection events. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { name: 'bitcoin-hook-proxy', level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? pino.destination({ sync: true }),
  );
}
