/**
 * The command line: finds the command, parses its arguments from its table (src/cli/spec.ts),
 * answers --help and --version, and turns every failure into one line and an exit code
 * (0 done, 1 failed, 2 typed wrong).
 */
import { readFileSync } from 'node:fs';
import { closest } from '../hooks/suggest.js';
import { COMMANDS, findCommand } from './commands.js';
import { proxyFailure } from './proxy-commands.js';
import { CliError, commandHelp, parseCommand, PROGRAM, shortSynopsis, UsageError, type CommandSpec } from './spec.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export function mainHelp(): string {
  const rows = COMMANDS.map((c) => [shortSynopsis(c), c.summary] as const);
  const width = Math.max(...rows.map(([s]) => s.length));
  return [
    `${PROGRAM} ${pkg.version}`,
    'A transparent Bitcoin P2P proxy in front of an unmodified bitcoind, with hook modules.',
    '',
    `Usage: ${PROGRAM} COMMAND [options]`,
    '',
    'Commands:',
    ...rows.map(([synopsis, summary]) => `  ${synopsis.padEnd(width)}  ${summary}`),
    '',
    `Options: -h, --help (also after a command: ${PROGRAM} run --help); -V, --version; --debug prints the stack of a fatal error.`,
    'Start with `init`, then `check` and `run`. See deploy/proxy.example.yaml for every setting.',
  ].join('\n');
}

/** Set once main() has an exit code; until then an empty event loop is a hang that node would report as success. */
let finished = false;
let debug = false;

async function main(argv: string[]): Promise<number> {
  debug = argv.includes('--debug');
  // a global --debug before the command is the command's --debug
  const [first, ...rest] = argv[0] === '--debug' && argv.length > 1 ? [argv[1]!, '--debug', ...argv.slice(2)] : argv;
  if (first === undefined) {
    console.error(mainHelp());
    return 2;
  }
  if (first === '-h' || first === '--help' || first === 'help') {
    const about = first === 'help' ? rest[0] : undefined;
    if (about === undefined) return print(mainHelp());
    const spec = findCommand(about);
    if (!spec) return usage(new UsageError(unknownCommand(about)));
    return print(commandHelp(spec));
  }
  if (first === '-V' || first === '-v' || first === '--version') return print(pkg.version);
  if (first.startsWith('-')) return usage(new UsageError(`${first}: give the command first, e.g. ${PROGRAM} run --config FILE`));
  const spec = findCommand(first);
  if (!spec) return usage(new UsageError(unknownCommand(first)));
  return dispatch(spec, rest);
}

async function dispatch(spec: CommandSpec, argv: string[]): Promise<number> {
  process.on('beforeExit', () => {
    if (finished) return;
    console.error(`${spec.name}: node ran out of work before the command finished${spec.stalled ? ` (${spec.stalled})` : ''}`);
    process.exit(1);
  });
  const before = argv.indexOf('--');
  const helpAsked = (before < 0 ? argv : argv.slice(0, before)).some((a) => a === '--help' || a === '-h');
  if (helpAsked) return print(commandHelp(spec));
  if (spec.raw) return spec.raw(argv);
  const args = parseCommand(spec, argv);
  return spec.run!(args);
}

function unknownCommand(name: string): string {
  const near = closest(name, COMMANDS.map((c) => c.name));
  return `unknown command "${name}"${near ? ` (did you mean ${near}?)` : ''}; the commands are ${COMMANDS.map((c) => c.name).join(', ')}`;
}

function print(text: string): number {
  console.log(text);
  return 0;
}

function usage(err: UsageError): number {
  console.error(`${err.message}\n${err.command ? `(${PROGRAM} ${err.command} --help shows its options)` : `(${PROGRAM} --help lists the commands)`}`);
  return 2;
}

/** One clear line per problem; the stack only with --debug. */
function fatalMessage(err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  const stack = debug && e.stack ? `\n${e.stack}` : '';
  const known = proxyFailure(e) ?? (e instanceof CliError ? e.message : null);
  if (known !== null) return known + stack;
  return `error: ${e.message}${stack || ' (--debug shows where)'}`;
}

export function runCli(argv: string[]): void {
  main(argv)
    .catch((err: unknown) => {
      if (err instanceof UsageError) return usage(err);
      console.error(fatalMessage(err));
      return 1;
    })
    .then((code) => {
      finished = true;
      process.exitCode = code;
      // let pino flush, then leave even if a stray handle lingers
      setTimeout(() => process.exit(code), 200).unref();
    });
}
