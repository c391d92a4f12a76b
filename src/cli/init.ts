/**
 * `init`: a commented starter config for one network, and the bitcoin.conf lines that go with
 * it. The ports are those of deploy/bitcoin.conf (its test keeps the two the same).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NETWORKS, type NetworkName } from '../codec/index.js';
import { CliError, PROGRAM, type CommandSpec } from './spec.js';

interface NetworkSetup {
  /** bitcoin.conf section; null: mainnet, the top of the file */
  section: string | null;
  /** bitcoind's P2P listener behind the proxy, on loopback */
  backendPort: number;
  /** where the proxy listens: everyone (a public network) or this machine (regtest) */
  listenHosts: readonly string[];
}

/** bitcoind moves to a loopback port of its own; not 8334, bitcoind's default onion target port since v22. */
export const NETWORK_SETUP: Record<NetworkName, NetworkSetup> = {
  mainnet: { section: null, backendPort: 8433, listenHosts: ['0.0.0.0', '[::]'] },
  testnet3: { section: 'test', backendPort: 18433, listenHosts: ['0.0.0.0', '[::]'] },
  testnet4: { section: 'testnet4', backendPort: 48433, listenHosts: ['0.0.0.0', '[::]'] },
  signet: { section: 'signet', backendPort: 38433, listenHosts: ['0.0.0.0', '[::]'] },
  regtest: { section: 'regtest', backendPort: 18544, listenHosts: ['127.0.0.1'] },
};

const NETWORK_NAMES = Object.keys(NETWORK_SETUP) as NetworkName[];

export const INIT: CommandSpec = {
  name: 'init',
  summary: 'write a commented starter config for a network, and print the bitcoin.conf lines to add',
  options: {
    network: { type: 'string', short: 'n', arg: 'NETWORK', choices: NETWORK_NAMES, help: 'the Bitcoin network (default mainnet)' },
    out: { type: 'string', short: 'o', arg: 'FILE', file: true, help: 'where to write the config (default proxy.yaml; - for stdout)' },
    force: { type: 'boolean', help: 'overwrite FILE if it exists' },
  },
  details: 'The config reads the admin token from $BHP_ADMIN_TOKEN; init prints a fresh one to export.',
  async run({ values }) {
    const network = (values.network as NetworkName | undefined) ?? 'mainnet';
    const out = (values.out as string | undefined) ?? 'proxy.yaml';
    const text = starterConfig(network, out === '-' ? null : out);
    const next = nextSteps(network, out);
    if (out === '-') {
      process.stdout.write(text);
      console.error(next);
      return 0;
    }
    try {
      // 'wx': never overwrite what an operator wrote, unless asked
      writeFileSync(out, text, { flag: values.force ? 'w' : 'wx' });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EEXIST') throw new CliError(`init: ${out} exists; choose another --out FILE, or --force to overwrite it`);
      throw new CliError(`init: cannot write ${out}: ${e.message}`);
    }
    console.log(`wrote ${out} (network ${network})\n\n${next}`);
    return 0;
  },
};

/** The JSON Schema shipped with this install, for the editor line of the config. */
function schemaPath(): string {
  return fileURLToPath(new URL('../../../schema/config.schema.json', import.meta.url));
}

/** The starter config: every line commented, valid as written once BHP_ADMIN_TOKEN is set. */
export function starterConfig(network: NetworkName, file: string | null): string {
  const setup = NETWORK_SETUP[network];
  const port = NETWORKS[network].defaultPort;
  // absolute: the config is often copied elsewhere (/etc/bitcoin-hook-proxy) after init
  const schema = schemaPath();
  const listen = setup.listenHosts.map((h) => `"${h}:${port}"`).join(', ');
  return `# yaml-language-server: $schema=${schema}
# bitcoin-hook-proxy config for ${network}, written by \`${PROGRAM} init\`.
# Check it:  ${PROGRAM} check --config ${file ?? 'proxy.yaml'}
# Durations: 500ms, 60s, 10m, 24h, 7d or seconds. Sizes: 5MB (SI), 5MiB (IEC) or bytes.
# \${VAR} is replaced by the environment variable VAR (unset is an error).
# Every setting: deploy/proxy.example.yaml in the package.

network: ${network}

# Where peers connect: the port bitcoind used to listen on.${setup.listenHosts.length === 1 ? '\n# regtest: this machine only.' : ''}
listen: [${listen}]

# bitcoind's P2P listener, on loopback only (the bitcoin.conf lines \`init\` printed).
backend: "127.0.0.1:${setup.backendPort}"

limits:
  maxPeers: 100             # below bitcoind's inbound slots: bitcoind sees every proxied peer as 127.0.0.1
  maxPeersPerAddress: 4
  maxPeersPerSubnet: 16     # per /24 (IPv4) or /64 (IPv6)

bans:
  file: ./data/bans.json    # relative to this file; written atomically, survives restarts
  threshold: 100            # misbehaviour score that bans
  duration: 24h

metrics:
  listen: "127.0.0.1:9333"  # Prometheus: /metrics; also /health and /ready for probes

admin:                      # peers, bans, reload: \`${PROGRAM} peers\`, \`bans\`, \`ban ADDR\`, \`reload\`
  listen: "127.0.0.1:9334"  # keep it on loopback: plain HTTP
  token: "\${BHP_ADMIN_TOKEN}"  # 16+ characters; the admin commands read the same variable

log:
  level: info               # fatal | error | warn | info | debug | trace | silent

# The hook chain, in order; docs/hooks.md lists the shipped hooks and their options.
hooks:
  - module: bitcoin-hook-proxy/hooks/message-filter
    options:
      inbound:
        deny: [mempool]     # peers may not dump the mempool
      action: drop
`;
}

/** What to add to bitcoin.conf for this network. */
export function bitcoinConfLines(network: NetworkName): string[] {
  const setup = NETWORK_SETUP[network];
  const port = NETWORKS[network].defaultPort;
  const lines = [
    'listen=1',
    `bind=127.0.0.1:${setup.backendPort}`,
    ...(network === 'regtest' ? [] : [`#externalip=<your public address>:${port}`, 'discover=0']),
  ];
  return setup.section ? [`[${setup.section}]`, ...lines] : lines;
}

function nextSteps(network: NetworkName, out: string): string {
  const setup = NETWORK_SETUP[network];
  const file = out === '-' ? 'proxy.yaml' : out;
  return [
    `Add to bitcoin.conf (${setup.section ? `in its [${setup.section}] section` : 'at the top, outside any [section]'}), then restart bitcoind:`,
    ...bitcoinConfLines(network).map((l) => `  ${l}`),
    ...(network === 'regtest' ? [] : ['  (externalip: the address peers reach the proxy at, so bitcoind advertises it instead of loopback)']),
    '  Do not add whitelist/whitebind with noban for the proxy: bitcoind would stop disconnecting misbehaving peers.',
    '',
    'Then:',
    `  export BHP_ADMIN_TOKEN=${randomBytes(24).toString('hex')}   # or put BHP_ADMIN_TOKEN=... in the service's environment file`,
    `  ${PROGRAM} check --config ${file}`,
    `  ${PROGRAM} run --config ${file}`,
  ].join('\n');
}
