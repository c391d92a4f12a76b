import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseSubnet, subnetContains, type Subnet } from './address.js';

export interface Ban {
  /** CIDR; a single address is /32 or /128 */
  subnet: string;
  /** ms since the epoch; the ban ends then */
  until: number;
  reason: string;
  created: number;
}

interface BanEntry extends Ban {
  parsed: Subnet;
}

const FILE_VERSION = 1;

/**
 * Banned addresses and subnets with expiry, persisted as JSON with atomic writes
 * (temporary file, fsync, rename, fsync of the directory) so a crash or kill -9 in the
 * middle of a save leaves either the old file or the new one, never a torn one.
 */
export class BanList {
  readonly #bans = new Map<string, BanEntry>();
  #saving: Promise<void> | null = null;
  #dirty = false;

  constructor(
    readonly file: string | null,
    private readonly now: () => number = Date.now,
  ) {}

  /** Load the ban file; a missing file is an empty list. Throws on a corrupt file (never silently drops bans). */
  async load(): Promise<void> {
    if (!this.file) return;
    await removeStaleTemporaries(this.file);
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let data: { version?: number; bans?: Ban[] };
    try {
      data = JSON.parse(text) as typeof data;
    } catch (err) {
      throw new Error(`ban file ${this.file} is not valid JSON: ${(err as Error).message}`);
    }
    if (data.version !== FILE_VERSION || !Array.isArray(data.bans)) throw new Error(`ban file ${this.file} has an unknown format`);
    for (const b of data.bans) {
      const parsed = parseSubnet(String(b.subnet));
      if (parsed && typeof b.until === 'number' && b.until > this.now()) {
        this.#bans.set(parsed.text, { subnet: parsed.text, until: b.until, reason: String(b.reason ?? ''), created: Number(b.created ?? 0), parsed });
      }
    }
  }

  /** Add or extend a ban. Returns the normalised entry, or null when `subnet` does not parse. */
  add(subnet: string, durationMs: number, reason: string): Ban | null {
    const parsed = parseSubnet(subnet);
    if (!parsed) return null;
    const now = this.now();
    const prev = this.#bans.get(parsed.text);
    const until = Math.max(prev?.until ?? 0, now + durationMs);
    const entry: BanEntry = { subnet: parsed.text, until, reason, created: prev?.created ?? now, parsed };
    this.#bans.set(parsed.text, entry);
    void this.save();
    return publicBan(entry);
  }

  remove(subnet: string): boolean {
    const parsed = parseSubnet(subnet);
    const removed = parsed ? this.#bans.delete(parsed.text) : false;
    if (removed) void this.save();
    return removed;
  }

  /** The ban that covers `address`, if any (expired bans are pruned on the way). */
  find(address: string): Ban | null {
    const now = this.now();
    for (const [key, b] of this.#bans) {
      if (b.until <= now) {
        this.#bans.delete(key);
        continue;
      }
      if (subnetContains(b.parsed, address)) return publicBan(b);
    }
    return null;
  }

  list(): Ban[] {
    const now = this.now();
    return [...this.#bans.values()].filter((b) => b.until > now).map(publicBan);
  }

  get size(): number {
    return this.list().length;
  }

  /** Write the list to disk. Concurrent calls coalesce into at most one more write. */
  async save(): Promise<void> {
    if (!this.file) return;
    this.#dirty = true;
    if (this.#saving) return this.#saving;
    this.#saving = (async () => {
      try {
        while (this.#dirty) {
          this.#dirty = false;
          await writeAtomic(this.file!, JSON.stringify({ version: FILE_VERSION, bans: this.list() }, null, 2) + '\n');
        }
      } finally {
        this.#saving = null;
      }
    })();
    return this.#saving;
  }
}

function publicBan(b: BanEntry): Ban {
  return { subnet: b.subnet, until: b.until, reason: b.reason, created: b.created };
}

/**
 * A save killed between open and rename leaves `FILE.PID.tmp` behind; each crash would add
 * one more (a full copy of the list). Remove those whose writer process is gone.
 */
async function removeStaleTemporaries(file: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.`;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = name.startsWith(prefix) ? /^(\d+)\.tmp$/.exec(name.slice(prefix.length)) : null;
    if (m && !processAlive(Number(m[1]))) await fs.rm(path.join(dir, name), { force: true });
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function writeAtomic(file: string, content: string): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await fs.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  // fsync the directory so the rename itself survives a power cut
  const dh = await fs.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
