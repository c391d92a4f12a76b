import type { RunningProxy } from './app.js';

/** Resolve with the exit code once SIGTERM or SIGINT has stopped everything gracefully. */
export function waitForShutdown(running: RunningProxy, onStop?: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      running.log.info({ signal }, 'shutting down');
      running
        .close()
        .then(() => onStop?.())
        .then(
          () => resolve(0),
          (err: Error) => {
            running.log.error({ err: err.message }, 'error during shutdown');
            resolve(1);
          },
        );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
