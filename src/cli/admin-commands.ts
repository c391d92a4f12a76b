/** peers, bans, ban, unban, reload: the admin API for a person at a terminal (tables), or --json for scripts. */
import { adminRequest, adminTarget, ADMIN_OPTIONS, apiError } from './admin-client.js';
import { bytes, relative, table } from './table.js';
import { withoutControls } from '../logging.js';
import { CliError, type CommandSpec } from './spec.js';

type Row = Record<string, unknown>;

/** The answer as the API gave it (one JSON document), for --json. */
function printJson(body: unknown): number {
  console.log(JSON.stringify(body, null, 2));
  return 0;
}

/** One line for a person; what a peer or an operator wrote is printed without terminal escapes. */
function say(text: string): number {
  console.log(withoutControls(text));
  return 0;
}

const ADMIN_DETAILS = 'Exit 0 when done; 1 when the proxy refused or could not be reached (the line says what to do); 2 when typed wrong.';

const PEERS: CommandSpec = {
  name: 'peers',
  summary: 'list the connected peers with their real addresses',
  options: ADMIN_OPTIONS,
  details: `BACKEND is the local port of the peer's connection to bitcoind: what \`bitcoin-cli getpeerinfo\` shows as 127.0.0.1:PORT.\n${ADMIN_DETAILS}`,
  async run({ values }) {
    const a = await adminRequest(adminTarget(values, 'peers'), 'GET', '/peers');
    if (a.status !== 200) throw new CliError(`peers: ${apiError(a)}`);
    if (values.json) return printJson(a.body);
    const peers = (Array.isArray(a.body.peers) ? a.body.peers : []) as Row[];
    if (peers.length === 0) return say('no peers connected');
    console.log(
      table(
        ['ID', 'ADDRESS', 'BACKEND', 'VERSION', 'USER AGENT', 'HEIGHT', 'RECEIVED', 'SENT', 'SCORE', 'CONNECTED', 'HANDSHAKE'],
        peers.map((p) => [
          num(p.id),
          address(p.address, p.port),
          num(p.backendLocalPort),
          num(p.version),
          str(p.userAgent),
          num(p.startHeight),
          bytes(p.bytesIn),
          bytes(p.bytesOut),
          num(p.misbehaviour),
          relative(p.connectedAt),
          p.handshakeComplete === true ? 'done' : String(p.transport ?? 'pending'),
        ]),
      ),
    );
    return 0;
  },
};

const BANS: CommandSpec = {
  name: 'bans',
  summary: 'list the bans (address or subnet, until when, why)',
  options: ADMIN_OPTIONS,
  details: ADMIN_DETAILS,
  async run({ values }) {
    const a = await adminRequest(adminTarget(values, 'bans'), 'GET', '/bans');
    if (a.status !== 200) throw new CliError(`bans: ${apiError(a)}`);
    if (values.json) return printJson(a.body);
    const bans = (Array.isArray(a.body.bans) ? a.body.bans : []) as Row[];
    if (bans.length === 0) return say('no bans');
    console.log(table(['SUBNET', 'UNTIL', 'ENDS', 'REASON', 'CREATED'], bans.map((b) => [str(b.subnet), str(b.until), relative(b.until), str(b.reason), str(b.created)])));
    return 0;
  },
};

const BAN: CommandSpec = {
  name: 'ban',
  summary: 'ban an address or subnet (saved to the ban file before this returns)',
  args: [{ name: 'ADDR', required: true }],
  options: {
    duration: { type: 'string', arg: 'D', help: 'how long: 30m, 24h, 7d or seconds (default: the config\'s bans.duration)' },
    reason: { type: 'string', arg: 'TEXT', help: 'why, kept with the ban (default "admin")' },
    ...ADMIN_OPTIONS,
  },
  details: `ADDR is an IPv4 or IPv6 address or a CIDR subnet (203.0.113.0/24). The peers it covers are disconnected.\n${ADMIN_DETAILS}`,
  async run({ values, positionals }) {
    const body: Row = { subnet: positionals[0] };
    if (values.duration !== undefined) body.duration = values.duration;
    if (values.reason !== undefined) body.reason = values.reason;
    const a = await adminRequest(adminTarget(values, 'ban'), 'POST', '/bans', body);
    if (values.json) printJson(a.body);
    if (a.status === 503) throw new CliError(`ban: ${apiError(a)}; it is retried, check the ban file's disk`);
    if (a.status !== 201) throw new CliError(`ban ${positionals[0]}: ${apiError(a)}`);
    const ban = (a.body.ban ?? {}) as Row;
    if (!values.json) say(`banned ${str(ban.subnet)} until ${str(ban.until)} (${relative(ban.until)}): ${str(ban.reason)}`);
    return 0;
  },
};

const UNBAN: CommandSpec = {
  name: 'unban',
  summary: 'lift the ban of an address or subnet',
  args: [{ name: 'ADDR', required: true }],
  options: ADMIN_OPTIONS,
  details: `ADDR as \`bans\` lists it (a single address also matches its /32 or /128).\n${ADMIN_DETAILS}`,
  async run({ values, positionals }) {
    const addr = positionals[0]!;
    const a = await adminRequest(adminTarget(values, 'unban'), 'DELETE', `/bans/${encodeURIComponent(addr)}`);
    if (values.json) printJson(a.body);
    if (a.status === 404) throw new CliError(`unban: ${apiError(a)} (\`bitcoin-hook-proxy bans\` lists them)`);
    if (a.status !== 200) throw new CliError(`unban ${addr}: ${apiError(a)}`);
    if (!values.json) say(`unbanned ${str(a.body.removed)}`);
    return 0;
  },
};

const RELOAD: CommandSpec = {
  name: 'reload',
  summary: 'reload the config and the hook chain of a running proxy (as SIGHUP does)',
  options: ADMIN_OPTIONS,
  details: `A config that does not load is refused with its reason and the running one stays.\n${ADMIN_DETAILS}`,
  async run({ values }) {
    const a = await adminRequest(adminTarget(values, 'reload'), 'POST', '/reload');
    if (values.json) printJson(a.body);
    if (a.status === 422) throw new CliError(`reload refused, the running config and hooks stay: ${apiError(a)}`);
    if (a.status !== 200) throw new CliError(`reload: ${apiError(a)}`);
    if (!values.json) say(`reloaded: ${str(a.body.reloaded)}`);
    return 0;
  },
};

export const ADMIN_COMMANDS: readonly CommandSpec[] = [PEERS, BANS, BAN, UNBAN, RELOAD];

const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));
function address(host: unknown, port: unknown): string {
  const h = str(host);
  return typeof port === 'number' ? (h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`) : h;
}

