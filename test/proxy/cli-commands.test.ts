/**
 * The commands around `run`, typed as an operator types them (child processes of the built
 * dist/src/cli.js): --version and -V, --help of every command, usage mistakes with "did you
 * mean", `init` for every network (its config passes `check`, hooks loaded, and its bitcoin.conf
 * lines are deploy/bitcoin.conf's), shell completion run by real bash and zsh (zsh driven
 * through a pseudo-terminal by its own zpty module, as a person pressing TAB), and the log
 * format: pretty on a terminal (a real pty from python3's pty module), JSON in a pipe.
 *
 * Real implementations: the built CLI, GNU bash, zsh (Debian; the zsh test is skipped, visibly,
 * without it), python3's pty module. The proxy's backend in the log-format test is a plain TCP
 * listener: the test is about log lines, not P2P.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { COMMANDS } from '../../src/cli/commands.js';
import { allOptions } from '../../src/cli/spec.js';
import { CLI, cli, RunningCli, ROOT, tempDir } from '../support/cli-process.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const NETWORKS = ['mainnet', 'testnet3', 'testnet4', 'signet', 'regtest'] as const;
const TOKEN_ENV = { ...process.env, BHP_ADMIN_TOKEN: 'init-test-token-0123456789' };

const noStack = (s: string) => assert.doesNotMatch(s, /\n\s+at /, `no stack trace: ${s}`);

test('-V, -v and --version print the version; nothing else', () => {
  for (const flag of ['-V', '-v', '--version']) {
    const r = cli([flag]);
    assert.deepEqual([r.status, r.stdout, r.stderr], [0, `${VERSION}\n`, ''], flag);
  }
});

test('every command has its own --help (also -h, and `help CMD`), naming each of its options', () => {
  assert.ok(COMMANDS.length >= 13);
  const main = cli(['--help']);
  for (const c of COMMANDS) {
    assert.match(main.stdout, new RegExp(`^  ${c.name}\\b`, 'm'), `${c.name} is listed`);
    const r = cli([c.name, '--help']);
    assert.equal(r.status, 0, `${c.name} --help: ${r.stderr}`);
    assert.ok(r.stdout.startsWith(`bitcoin-hook-proxy ${c.name}: ${c.summary}\n`), r.stdout);
    assert.match(r.stdout, new RegExp(`^Usage: bitcoin-hook-proxy ${c.name}\\b`, 'm'));
    for (const name of Object.keys(allOptions(c))) assert.match(r.stdout, new RegExp(`--${name}\\b`), `${c.name} --help names --${name}`);
    assert.equal(cli([c.name, '-h']).stdout, r.stdout, `${c.name} -h`);
    assert.equal(cli(['help', c.name]).stdout, r.stdout, `help ${c.name}`);
  }
  // --help wins over everything else typed, even what would be an error
  assert.equal(cli(['ban', '--no-such-option', '--help']).status, 0);
});

test('usage mistakes: exit 2, one clear message naming the command\'s help, never a stack', () => {
  const cases: [string[], RegExp][] = [
    [['demo', '--port', 'abc'], /^--port needs a TCP port number from 1 to 65535, not "abc"\n\(bitcoin-hook-proxy demo --help shows its options\)\n$/],
    [['demo', '--port', '70000'], /^--port needs a TCP port number from 1 to 65535, not "70000"/],
    [['chek'], /^unknown command "chek" \(did you mean check\?\)/],
    [['frobnicate'], /^unknown command "frobnicate"; the commands are init, check, run/],
    [['check', '--confg', 'x.yaml'], /^unknown option --confg \(did you mean --config\?\)\n\(bitcoin-hook-proxy check --help/],
    [['run'], /^run needs --config FILE\n/],
    [['check', '--config'], /^--config needs a value \(FILE\)\n/],
    [['peers', '--json=yes'], /^--json takes no value\n/],
    [['init', '--network', 'moonnet'], /^--network must be one of mainnet, testnet3, testnet4, signet, regtest, not "moonnet"/],
    [['ban'], /^missing ADDR\n\(bitcoin-hook-proxy ban --help/],
    [['unban', '1.2.3.4', '5.6.7.8'], /^unexpected argument "5\.6\.7\.8"/],
    [['completion', 'fish'], /^SHELL must be one of bash, zsh, not "fish"/],
    [['--config', 'x.yaml'], /^--config: give the command first/],
  ];
  for (const [args, expect] of cases) {
    const r = cli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', args.join(' '));
    assert.match(r.stderr, expect, args.join(' '));
    noStack(r.stderr);
    assert.doesNotMatch(r.stderr, /\.yaml: /, 'no config file the user never wrote');
  }
  const none = cli([]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /^bitcoin-hook-proxy \S+\n/, 'no command: the list of commands');
});

test('the buyer commands are wired: an unreachable seller and a missing payer are clear errors with what to do', async () => {
  const port = await freePort(); // nobody listens there
  const offers = cli(['offers', `127.0.0.1:${port}`]);
  assert.equal(offers.status, 1, offers.stderr);
  assert.match(offers.stderr, /unreachable[\s\S]*what to do/);
  const buy = cli(['buy', `127.0.0.1:${port}`, '--tier', 'pro', '--max-sats', '10']);
  assert.equal(buy.status, 2, buy.stderr);
  assert.match(buy.stderr, /no payer: give --config with an outbound\.payer section/);
});

test('outbound.payer with a file that is not there: check refuses it as run does, naming the key and the file', async (t) => {
  // the built CLI and the real file system; no backend is needed for either to find it
  const dir = tempDir(t);
  const config = path.join(dir, 'proxy.yaml');
  const [port, socks] = [await freePort(), await freePort()];
  writeFileSync(config, [
    'network: regtest',
    `listen: ["127.0.0.1:${port}"]`,
    'backend: 127.0.0.1:1',
    'metrics: false',
    'admin: false',
    'outbound:',
    `  socks: { listen: "127.0.0.1:${socks}" }`,
    '  payer: { kind: lnd, url: "https://127.0.0.1:8080", macaroonFile: ./pay.macaroon }',
  ].join('\n'));
  const missing = path.join(dir, 'pay.macaroon');
  for (const command of ['check', 'run']) {
    const r = cli([command, '--config', config]);
    assert.equal(r.status, 1, `${command}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /outbound\.payer\.macaroonFile/, `${command} names the key: ${r.stderr}`);
    assert.ok(r.stderr.includes(missing), `${command} names the file: ${r.stderr}`);
    noStack(r.stderr);
  }
});

/** bitcoin.conf as deploy/ ships it: section name ('' at the top) → its bind= value. */
function deployBinds(): Map<string, string> {
  const binds = new Map<string, string>();
  let section = '';
  for (const raw of readFileSync(path.join(ROOT, 'deploy/bitcoin.conf'), 'utf8').split('\n')) {
    const line = raw.trim();
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) section = s[1]!;
    const b = /^bind=(127\.0\.0\.1:\d+)$/.exec(line);
    if (b) binds.set(section, b[1]!);
  }
  return binds;
}

test('init: a commented starter config for each network that passes check (hooks loaded), and the bitcoin.conf lines of deploy/bitcoin.conf', (t) => {
  const dir = tempDir(t);
  const binds = deployBinds();
  const sections: Record<string, string> = { mainnet: '', testnet3: 'test', testnet4: 'testnet4', signet: 'signet', regtest: 'regtest' };
  for (const network of NETWORKS) {
    const out = path.join(dir, `${network}.yaml`);
    const r = cli(['init', '--network', network, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(network ${network}\\)`));
    const text = readFileSync(out, 'utf8');
    assert.ok(text.split('\n').filter((l) => l.trimStart().startsWith('#')).length >= 8, 'commented');
    const schema = /^# yaml-language-server: \$schema=(\S+)$/m.exec(text)?.[1];
    assert.ok(schema && existsSync(schema), `the editor line names the shipped schema: ${schema}`);
    const checked = cli(['check', '--config', out], TOKEN_ENV);
    assert.equal(checked.status, 0, `${network}: ${checked.stderr}`);
    assert.match(checked.stdout, new RegExp(`valid \\(network ${network}, .* 1 hook\\(s\\)\\)`));

    // the bitcoin.conf lines: the backend port is the deploy file's bind for that section
    const doc = parseYaml(text) as { backend: string };
    const section = sections[network]!;
    assert.equal(binds.get(section), doc.backend, `deploy/bitcoin.conf ${section || '(top)'} binds bitcoind where the config's backend points`);
    assert.match(r.stdout, new RegExp(`^  bind=${doc.backend.replace(/\./g, '\\.')}$`, 'm'));
    if (section) assert.match(r.stdout, new RegExp(`^  \\[${section}\\]$`, 'm'), 'under its network section');
    else assert.doesNotMatch(r.stdout, /^ {2}\[/m, 'mainnet: at the top, no section');
    assert.match(r.stdout, /^ {2}listen=1$/m);
    assert.match(r.stdout, /export BHP_ADMIN_TOKEN=[0-9a-f]{48}/);
  }
  // without BHP_ADMIN_TOKEN check says what to set
  const env = { ...process.env };
  delete env.BHP_ADMIN_TOKEN;
  const unset = cli(['check', '--config', path.join(dir, 'mainnet.yaml')], env);
  assert.equal(unset.status, 1);
  assert.match(unset.stderr, /admin\.token \(line \d+\): environment variable BHP_ADMIN_TOKEN is not set/);
});

test('init never overwrites without --force; --out - writes the config to stdout and the rest to stderr', (t) => {
  const dir = tempDir(t);
  const out = path.join(dir, 'proxy.yaml');
  writeFileSync(out, 'mine\n');
  const refused = cli(['init', '--out', out]);
  assert.equal(refused.status, 1);
  assert.equal(refused.stderr, `init: ${out} exists; choose another --out FILE, or --force to overwrite it\n`);
  assert.equal(readFileSync(out, 'utf8'), 'mine\n', 'untouched');
  assert.equal(cli(['init', '--out', out, '--force', '--network', 'regtest']).status, 0);
  assert.match(readFileSync(out, 'utf8'), /^network: regtest$/m);
  const missingDir = cli(['init', '--out', path.join(dir, 'no', 'such', 'dir.yaml')]);
  assert.equal(missingDir.status, 1);
  assert.match(missingDir.stderr, /^init: cannot write .*dir\.yaml: ENOENT/);

  const piped = cli(['init', '--network', 'signet', '--out', '-']);
  assert.equal(piped.status, 0);
  assert.match(piped.stdout, /^# yaml-language-server/);
  assert.match(piped.stderr, /^Add to bitcoin\.conf \(in its \[signet\] section\)/);
  const file = path.join(dir, 'from-stdout.yaml');
  writeFileSync(file, piped.stdout);
  assert.equal(cli(['check', '--config', file], TOKEN_ENV).status, 0);
});

test('bash completion: real bash completes commands, options, fixed values, and leaves files to bash', () => {
  const script = cli(['completion', 'bash']);
  assert.equal(script.status, 0, script.stderr);
  /** COMPREPLY for the words typed so far (the last one being completed) */
  const complete = (...words: string[]): string[] => {
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `eval "$(cat)"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _bitcoin_hook_proxy; printf '%s\\n' "\${COMPREPLY[@]}"; complete -p bitcoin-hook-proxy >&2`, 'bash', ...words], {
      input: script.stdout,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /complete -o default -F _bitcoin_hook_proxy bitcoin-hook-proxy/);
    return r.stdout.split('\n').filter(Boolean);
  };
  assert.deepEqual(complete('bitcoin-hook-proxy', 'ch'), ['check']);
  assert.deepEqual(complete('bitcoin-hook-proxy', 'b').sort(), ['ban', 'bans', 'buy']);
  assert.deepEqual(complete('bitcoin-hook-proxy', '').length, COMMANDS.length + 2, 'every command, --help, --version');
  assert.deepEqual(complete('bitcoin-hook-proxy', 'run', '--').sort(), ['--config', '--debug', '--help', '--log-format']);
  assert.deepEqual(complete('bitcoin-hook-proxy', 'run', '--log-format', ''), ['json', 'pretty']);
  assert.deepEqual(complete('bitcoin-hook-proxy', 'init', '-n', 't'), ['testnet3', 'testnet4']);
  assert.deepEqual(complete('bitcoin-hook-proxy', 'completion', ''), ['bash', 'zsh']);
  assert.deepEqual(complete('bitcoin-hook-proxy', 'ban', '1.2.3.4', '--d'), ['--duration', '--debug']);
  assert.deepEqual(complete('bitcoin-hook-proxy', 'check', '--config', 'pro'), [], 'a FILE: bash completes file names (-o default)');
});

const zshPath = ['/usr/bin/zsh', '/bin/zsh'].find((p) => existsSync(p));

/** Drives an interactive zsh through zpty: types each line, presses TAB, and returns what the line became. */
const ZPTY_DRIVER = String.raw`
zmodload zsh/zpty
dir=$1 script=$2; shift 2
zpty -b z zsh -f -i
zpty -w z "cd ${'$'}{(q)dir}; bindkey -e; PS1='%# '; autoload -Uz compinit; compinit -u -D; source ${'$'}{(q)script}; echo \$((6*7))READY"
zpty -r z line '*42READY*' || exit 3
i=0
for typed in "$@"; do
  (( i++ ))
  zpty -w -n z "$typed"$'\t\C-a: \C-e #END'$i$'\n'
  zpty -r z out "*#END$i*" || exit 4
  print -r -- "$out"
done
zpty -d z
`;

test('zsh completion: a real interactive zsh completes commands, options, values and files on TAB', { skip: zshPath || process.env.CI ? false : 'zsh is not installed (apt-get install zsh)', timeout: 60_000 }, (t) => {
  const dir = tempDir(t);
  const script = path.join(dir, '_bitcoin-hook-proxy');
  const r = cli(['completion', 'zsh']);
  assert.equal(r.status, 0, r.stderr);
  writeFileSync(script, r.stdout);
  assert.equal(spawnSync(zshPath!, ['-n', script]).status, 0, 'zsh parses it');
  writeFileSync(path.join(dir, 'cfg-unique-name.yaml'), '');
  const cases: [string, string][] = [
    ['bitcoin-hook-proxy ch', 'bitcoin-hook-proxy check'],
    ['bitcoin-hook-proxy init --network s', 'bitcoin-hook-proxy init --network signet'],
    ['bitcoin-hook-proxy run --log-f', 'bitcoin-hook-proxy run --log-format'],
    ['bitcoin-hook-proxy run --log-format pr', 'bitcoin-hook-proxy run --log-format pretty'],
    ['bitcoin-hook-proxy completion z', 'bitcoin-hook-proxy completion zsh'],
    ['bitcoin-hook-proxy check --config cfg-u', 'bitcoin-hook-proxy check --config cfg-unique-name.yaml'],
    ['bitcoin-hook-proxy ban 1.2.3.4 --dur', 'bitcoin-hook-proxy ban 1.2.3.4 --duration'],
  ];
  const driven = spawnSync(zshPath!, ['-f', '-c', ZPTY_DRIVER, 'zsh', dir, script, ...cases.map(([typed]) => typed)], { encoding: 'utf8', timeout: 50_000 });
  assert.equal(driven.status, 0, `zpty driver: ${driven.stderr}`);
  // what the terminal showed, without escape sequences and redraw characters
  const screen = driven.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\r\b]/g, '');
  cases.forEach(([typed, expected], i) => {
    assert.ok(screen.includes(`${expected} #END${i + 1}`), `"${typed}" + TAB became "${expected}" (screen: ${JSON.stringify(screen.slice(-2000))})`);
  });
});

/** A backend that accepts and holds connections: the proxy only needs somewhere to connect. */
async function holdingBackend(t: { after: (fn: () => void) => void }): Promise<number> {
  const server = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

async function proxyConfig(t: { after: (fn: () => void) => void }, dir: string): Promise<string> {
  const file = path.join(dir, 'proxy.yaml');
  writeFileSync(file, ['network: regtest', `listen: "127.0.0.1:${await freePort()}"`, `backend: "127.0.0.1:${await holdingBackend(t)}"`, 'metrics: false'].join('\n'));
  return file;
}

test('log format: JSON in a pipe, pretty on request; --log-format json and pretty force either', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const config = await proxyConfig(t, dir);
  for (const [args, json] of [[[], true], [['--log-format', 'pretty'], false], [['--log-format', 'json'], true]] as const) {
    const run = new RunningCli(config, { args: [...args] });
    t.after(() => run.kill());
    await waitFor(() => [...run.plain, ...run.lines.map((l) => String(l.msg))].some((l) => l.includes('listening for peers')), 20_000, `the listening line (${args.join(' ') || 'piped'}) (stderr: ${run.stderr})`);
    if (json) {
      assert.ok(run.lines.some((l) => l.msg === 'listening for peers' && l.level === 30), 'JSON records');
      assert.deepEqual(run.plain, [], 'nothing but JSON');
    } else {
      assert.deepEqual(run.lines, [], 'no JSON');
      const line = run.plain.find((l) => l.includes('listening for peers'))!;
      assert.match(line, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: listening for peers /);
      assert.doesNotMatch(line, /\x1b\[/, 'no colours into a pipe');
    }
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  }
});

/** Runs argv on a new pseudo-terminal, copies what it prints to stdout, passes SIGINT on, exits with its code. */
const PTY_DRIVER = `
import os, pty, signal, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
signal.signal(signal.SIGINT, lambda *_: os.kill(pid, signal.SIGINT))
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
`;

test('log format: pretty and coloured by default on a terminal (a real pty)', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const config = await proxyConfig(t, dir);
  for (const [args, pretty] of [[[], true], [['--log-format', 'json'], false]] as const) {
    // python3's pty module gives the CLI a pseudo-terminal as stdout (util-linux script printed nothing on one CI machine)
    const child = spawn('python3', ['-c', PTY_DRIVER, process.execPath, CLI, 'run', '--config', config, ...args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, NO_COLOR: '' } });
    let driverErr = '';
    child.stderr.on('data', (c: Buffer) => (driverErr += c.toString('utf8')));
    child.once('error', (e) => (driverErr += String(e)));
    let screen = '';
    child.stdout.on('data', (c: Buffer) => (screen += c.toString('utf8')));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    t.after(() => {
      if (child.exitCode === null) process.kill(child.pid!, 'SIGINT'); // the driver passes it to the CLI on the pty
    });
    await waitFor(() => screen.includes('listening for peers'), 20_000, `the listening line on the terminal (${screen.slice(0, 500)}) (driver stderr: ${driverErr.slice(0, 500)})`);
    if (pretty) {
      assert.match(screen, /INFO.*: .*listening for peers/);
      assert.match(screen, /\x1b\[\d+m/, 'coloured');
      assert.doesNotMatch(screen, /"level":30/);
    } else {
      assert.match(screen, /\{"level":30,.*"msg":"listening for peers"/);
    }
    process.kill(child.pid!, 'SIGINT');
    assert.equal(await exited, 0, `${screen.slice(-1000)} ${driverErr}`);
  }
});
