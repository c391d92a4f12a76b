/**
 * How a command is described once (name, options, arguments, help) so that parsing, per-command
 * --help and shell completion all read the same table.
 */
import { parseArgs } from 'node:util';
import { closest } from '../hooks/suggest.js';

export const PROGRAM = 'bitcoin-hook-proxy';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** the value's name in help, e.g. FILE */
  arg?: string;
  /** the only values allowed (checked, shown in help, offered by completion) */
  choices?: readonly string[];
  /** completion offers file names */
  file?: boolean;
  /** the command cannot run without it */
  required?: boolean;
  help: string;
}

export interface ArgSpec {
  name: string;
  required: boolean;
  choices?: readonly string[];
}

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface CommandSpec {
  name: string;
  /** one line for the command list */
  summary: string;
  options: Record<string, OptionSpec>;
  args?: readonly ArgSpec[];
  /** paragraphs after the options in `CMD --help` */
  details?: string;
  /**
   * The command parses its own arguments (a family added by another module): it gets argv as
   * typed after its name; --help is still answered from this table.
   */
  raw?: (argv: string[]) => Promise<number>;
  /** why node could run out of work before this command finished, for the message if it does */
  stalled?: string;
  run?: (args: ParsedArgs) => Promise<number>;
}

/** Options every command takes. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  debug: { type: 'boolean', help: 'print the stack trace of a fatal error' },
};

/** A mistake in how the command was typed: printed with a pointer to the help, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}

/** A failure the command explains itself (unreachable admin API, a refused token): printed as is, exit 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

export function allOptions(spec: CommandSpec): Record<string, OptionSpec> {
  return { ...spec.options, ...COMMON_OPTIONS };
}

/** Parse argv (what follows the command name) against the command's table; throws UsageError. */
export function parseCommand(spec: CommandSpec, argv: string[]): ParsedArgs {
  const options = allOptions(spec);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(Object.entries(options).map(([name, o]) => [name, o.short ? { type: o.type, short: o.short } : { type: o.type }])),
    });
  } catch (err) {
    throw new UsageError(explainParseError(err as Error & { code?: string }, options), spec.name);
  }
  const values = parsed.values as ParsedArgs['values'];
  if (values.help) return { values, positionals: parsed.positionals };
  for (const [name, o] of Object.entries(options)) {
    const v = values[name];
    if (o.required && v === undefined) throw new UsageError(`${spec.name} needs --${name}${o.arg ? ` ${o.arg}` : ''}`, spec.name);
    if (o.choices && typeof v === 'string' && !o.choices.includes(v)) {
      throw new UsageError(`--${name} must be one of ${o.choices.join(', ')}, not ${JSON.stringify(v)}`, spec.name);
    }
  }
  const args = spec.args ?? [];
  const required = args.filter((a) => a.required).length;
  if (parsed.positionals.length < required) throw new UsageError(`missing ${args[parsed.positionals.length]!.name}`, spec.name);
  if (parsed.positionals.length > args.length) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[args.length])}`, spec.name);
  args.forEach((a, i) => {
    const v = parsed.positionals[i];
    if (v !== undefined && a.choices && !a.choices.includes(v)) throw new UsageError(`${a.name} must be one of ${a.choices.join(', ')}, not ${JSON.stringify(v)}`, spec.name);
  });
  return { values, positionals: parsed.positionals };
}

/** node:util's messages, with "did you mean" for a misspelt option. */
function explainParseError(err: Error & { code?: string }, options: Record<string, OptionSpec>): string {
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const given = /'([^']+)'/.exec(err.message)?.[1] ?? '';
    const near = closest(given.replace(/^-+/, '').replace(/=.*/, ''), Object.keys(options));
    return `unknown option ${given}${near ? ` (did you mean --${near}?)` : ''}`;
  }
  const long = /--([\w-]+)/.exec(err.message)?.[1];
  const o = long === undefined ? undefined : options[long];
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && o) {
    return o.type === 'string' ? `--${long} needs a value${o.arg ? ` (${o.arg})` : ''}` : `--${long} takes no value`;
  }
  return err.message;
}

/** `bitcoin-hook-proxy CMD --help`. */
export function commandHelp(spec: CommandSpec): string {
  const options = allOptions(spec);
  const synopsis = [
    PROGRAM,
    spec.name,
    ...(spec.args ?? []).map((a) => (a.required ? a.name : `[${a.name}]`)),
    ...Object.entries(spec.options).map(([name, o]) => (o.required ? synopsisFlag(name, o) : `[${synopsisFlag(name, o)}]`)),
  ].join(' ');
  const rows = Object.entries(options).map(([name, o]): [string, string] => [flag(name, o), o.help + (o.choices ? ` (${o.choices.join(' | ')})` : '')]);
  const width = Math.max(...rows.map(([f]) => f.length));
  const lines = [`${PROGRAM} ${spec.name}: ${spec.summary}`, '', `Usage: ${synopsis}`, '', 'Options:', ...rows.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`)];
  if (spec.details) lines.push('', spec.details);
  return lines.join('\n');
}

/** The name and what it cannot run without: "run --config FILE", "ban ADDR". */
export function shortSynopsis(spec: CommandSpec): string {
  const required = Object.entries(spec.options).filter(([, o]) => o.required);
  return [spec.name, ...(spec.args ?? []).filter((a) => a.required).map((a) => a.name), ...required.map(([name, o]) => synopsisFlag(name, o))].join(' ');
}

function synopsisFlag(name: string, o: OptionSpec): string {
  return `--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
}

function flag(name: string, o: OptionSpec): string {
  const value = o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : '';
  return `${o.short ? `-${o.short}, ` : ''}--${name}${value}`;
}
