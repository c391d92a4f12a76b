/** Every command, in the order `--help` lists them. */
import { ADMIN_COMMANDS } from './admin-commands.js';
import { BUYER_COMMANDS } from './buyer-commands.js';
import { completionScript, SHELLS, type Shell } from './completion.js';
import { INIT } from './init.js';
import { CHECK, LOG_FORMAT_OPTION, logFormat, RUN } from './proxy-commands.js';
import { UsageError, type CommandSpec } from './spec.js';

const DEMO: CommandSpec = {
  name: 'demo',
  summary: 'run a regtest Bitcoin node (bcoin, in-process) with the proxy in front of it',
  options: {
    port: { type: 'string', arg: 'N', help: 'the proxy port (default 18444, or one the OS picks when that is taken)' },
    'log-format': LOG_FORMAT_OPTION,
  },
  details: 'Needs the bcoin package, a devDependency: `npm install` in a clone; installed from npm, `npm install bcoin` beside it with "overrides": { "leveldown": "6.1.1" } in that package.json. Ctrl-C stops.',
  async run({ values }) {
    const port = values.port === undefined ? undefined : portNumber(String(values.port), 'demo');
    const { runDemo } = await import('../demo.js');
    return runDemo({ port, logFormat: logFormat(values) });
  },
};

/** A TCP port typed on the command line, or a UsageError that says what is wrong. */
export function portNumber(text: string, command: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new UsageError(`--port needs a TCP port number from 1 to 65535, not ${JSON.stringify(text)}`, command);
  return n;
}

const COMPLETION: CommandSpec = {
  name: 'completion',
  summary: 'print the shell completion script for bash or zsh',
  args: [{ name: 'SHELL', required: true, choices: SHELLS }],
  options: {},
  details: 'bash: source <(bitcoin-hook-proxy completion bash)\nzsh:  source <(bitcoin-hook-proxy completion zsh)   (after compinit)',
  async run({ positionals }) {
    process.stdout.write(completionScript(positionals[0] as Shell, COMMANDS));
    return 0;
  },
};

export const COMMANDS: readonly CommandSpec[] = [INIT, CHECK, RUN, DEMO, ...ADMIN_COMMANDS, ...BUYER_COMMANDS, COMPLETION];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}
