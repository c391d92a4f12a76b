/**
 * Shell completion scripts, generated from the command table so that they never fall behind it:
 * command names, each command's options, the values of options with fixed choices, and file
 * names where a FILE is expected.
 */
import { allOptions, PROGRAM, type CommandSpec, type OptionSpec } from './spec.js';

export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

const FN = '_bitcoin_hook_proxy';

export function completionScript(shell: Shell, commands: readonly CommandSpec[]): string {
  return shell === 'bash' ? bashScript(commands) : zshScript(commands);
}

/** Words made safe inside single quotes. */
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function flags(name: string, o: OptionSpec): string[] {
  return [`--${name}`, ...(o.short ? [`-${o.short}`] : [])];
}

function bashScript(commands: readonly CommandSpec[]): string {
  const cases = commands.map((c) => {
    const options = Object.entries(allOptions(c));
    const valueCases = options
      .filter(([, o]) => o.type === 'string')
      .map(([name, o]) => {
        const words = flags(name, o).join('|');
        // a file: no words, and `complete -o default` falls back to file names
        const reply = o.choices ? `COMPREPLY=( $(compgen -W ${sq(o.choices.join(' '))} -- "$cur") )` : 'COMPREPLY=()';
        return `        ${words}) ${reply}; return ;;`;
      });
    const positional = c.args?.find((a) => a.choices);
    const words = options.flatMap(([name, o]) => flags(name, o)).filter((f) => f.startsWith('--'));
    return [
      `    ${c.name})`,
      ...(valueCases.length ? ['      case "$prev" in', ...valueCases, '      esac'] : []),
      positional?.choices ? `      if [[ "$cur" != -* ]]; then COMPREPLY=( $(compgen -W ${sq(positional.choices.join(' '))} -- "$cur") ); return; fi` : '',
      `      COMPREPLY=( $(compgen -W ${sq(words.join(' '))} -- "$cur") ) ;;`,
    ]
      .filter(Boolean)
      .join('\n');
  });
  return `# bash completion for ${PROGRAM}. Load it in this shell:
#   source <(${PROGRAM} completion bash)
# or for every shell: ${PROGRAM} completion bash > /etc/bash_completion.d/${PROGRAM}
${FN}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=( $(compgen -W ${sq([...commands.map((c) => c.name), '--help', '--version'].join(' '))} -- "$cur") )
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases.join('\n')}
  esac
}
complete -o default -F ${FN} ${PROGRAM}
`;
}

/** An option's help as a completion menu shows it: its first clause, brackets escaped for _arguments. */
const zhelp = (s: string) => s.replace(/ \(.*$|;.*$/, '').replace(/\\/g, '\\\\').replace(/([[\]])/g, '\\$1');
/** an _arguments message or value name: no colons */
const zname = (s: string) => s.replace(/[:\\]/g, '');

function zshScript(commands: readonly CommandSpec[]): string {
  const described = commands.map((c) => sq(`${c.name}:${c.summary.replace(/:/g, '\\:')}`)).join('\n    ');
  const cases = commands.map((c) => {
    const specs = Object.entries(allOptions(c)).map(([name, o]) => {
      const help = `[${zhelp(o.help)}]`;
      const value = o.type === 'string' ? `:${zname((o.arg ?? 'value').toLowerCase())}:${o.choices ? `(${o.choices.join(' ')})` : o.file ? '_files' : ' '}` : '';
      const names = flags(name, o);
      // -c and --config exclude each other: '(-c --config)'{-c,--config}'[help]:file:_files'
      return names.length > 1 ? `${sq(`(${names.join(' ')})`)}{${names.join(',')}}${sq(`${help}${value}`)}` : sq(`${names[0]}${help}${value}`);
    });
    const positional = (c.args ?? []).map((a, i) => sq(`${i + 1}:${zname(a.name.toLowerCase())}:${a.choices ? `(${a.choices.join(' ')})` : ' '}`));
    return `    ${c.name}) _arguments -s ${[...specs, ...positional].join(' ')} ;;`;
  });
  return `#compdef ${PROGRAM}
# zsh completion for ${PROGRAM}. Load it in this shell (after compinit):
#   source <(${PROGRAM} completion zsh)
# or for every shell: ${PROGRAM} completion zsh > "\${fpath[1]}/_${PROGRAM}"
${FN}() {
  local -a commands
  commands=(
    ${described}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands command commands
    return
  fi
  local cmd=$words[2]
  shift words
  (( CURRENT-- ))
  case $cmd in
${cases.join('\n')}
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  ${FN} "$@"
else
  compdef ${FN} ${PROGRAM}
fi
`;
}
