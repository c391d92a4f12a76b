/**
 * V8 settings for the long-running proxy process, applied by the executable before anything
 * else loads (a library user's process keeps its own). Flags given in NODE_OPTIONS or on the
 * command line win over each of these.
 *
 * The young generation stays at its initial size instead of doubling under load: the proxy's
 * hot paths allocate little (views, write requests) and almost nothing survives a scavenge, so
 * a larger young generation buys no speed, while its pages stay resident. Measured on 5,000
 * idle peers: 145 MB RSS -> 123 MB; 250 B messages through 0 and 1 hooks unchanged within noise.
 *
 * The optimizing compiler (TurboFan) waits until start-up is over (whenStarted), and the
 * executable loads its modules only after this file ran (src/cli.ts): start-up code runs once
 * (the module loader over ~200 files, config schemas, hook loading), so optimizing it buys
 * nothing, while its compilations leave their working memory to the process (malloc arenas
 * of V8's compiler threads). Idle process, RSS at listen, medians of 4 in one run: Node 20
 * 69 -> 60 MB, Node 22 83 -> 71 MB, Node 24 81 -> 75 MB (deferring Maglev as well, on by
 * default from Node 22, saved nothing more). The relay's hot paths run only once peers
 * connect, by when the compiler is back.
 */
import { setFlagsFromString } from 'node:v8';
import { whenStarted } from './lifecycle.js';

const given = `${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`;
if (!given.includes('semi-space')) setFlagsFromString('--semi-space-growth-factor=1');

/** the user chose the compiler settings: leave them alone */
const jitGiven = /--(no-)?(opt|turbofan)\b|--jitless|--lite-mode/.test(given);
if (!jitGiven) {
  setFlagsFromString('--no-turbofan');
  let deferred = true;
  const compile = () => {
    if (deferred) setFlagsFromString('--turbofan');
    deferred = false;
  };
  whenStarted(compile);
  // whatever the command, the compiler comes back (one that is not a server too, if it runs long)
  setTimeout(compile, 10_000).unref();
}
