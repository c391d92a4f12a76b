import type { RunningProxy } from './app.js';

type Stop = (signal: string) => void;

const afterStart: (() => void)[] = [];

/** `fn` runs once a long-running command is up (it reached trapShutdown().until): start-up is over. */
export function whenStarted(fn: () => void): void {
  afterStart.push(fn);
}

/**
 * Take SIGTERM and SIGINT from now on. Call it before starting: a signal that arrives while the
 * proxy starts (it may already listen and log so) is kept, and the proxy stops gracefully once
 * it is up, instead of the process dying of the signal's default action.
 */
export function trapShutdown(): { until(running: RunningProxy, onStop?: () => Promise<void>): Promise<number> } {
  let caught: string | null = null;
  let stop: Stop | null = null;
  const on = (signal: string) => {
    if (caught) return;
    caught = signal;
    stop?.(signal);
  };
  process.once('SIGTERM', () => on('SIGTERM'));
  process.once('SIGINT', () => on('SIGINT'));
  return {
    until(running, onStop) {
      for (const fn of afterStart.splice(0)) fn();
      return new Promise((resolve) => {
        stop = (signal) => {
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
        if (caught) stop(caught);
      });
    },
  };
}

/**
 * Take SIGHUP from now on. Its default action kills the process, and systemd sends it whenever
 * asked to reload (a Type=simple unit counts as started at once): one that arrives while the
 * proxy starts is kept, and the reload runs once `onReload` is given it.
 */
export function trapReload(): { onReload(reload: () => void): void } {
  let reload: (() => void) | null = null;
  let pending = false;
  process.on('SIGHUP', () => (reload ? reload() : (pending = true)));
  return {
    onReload(r) {
      reload = r;
      if (pending) r();
      pending = false;
    },
  };
}
