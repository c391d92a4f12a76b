/**
 * Durable file replacement: write a temporary file, fsync it, rename it over the target and
 * fsync the directory, so a crash or kill -9 at any point leaves either the old content or
 * the new one, never a torn file, and an acknowledged write survives a power cut.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

let sequence = 0;

/** `FILE.PID.N.tmp`: the pid lets a later start tell a dead writer's leftovers from a live one's. */
function temporaryName(file: string): string {
  return `${file}.${process.pid}.${sequence++}.tmp`;
}

/** Replace `file` with `content` durably (mode 0600 by default: ban lists, claims and credentials are private). */
export async function writeAtomic(file: string, content: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = temporaryName(file);
  let renamed = false;
  try {
    const fh = await fs.open(tmp, 'w', mode);
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
    renamed = true;
  } finally {
    // a failed write (disk full, EROFS after open) must not leave a copy behind
    if (!renamed) await fs.rm(tmp, { force: true }).catch(() => {});
  }
  await syncDirectory(dir);
}

async function syncDirectory(dir: string): Promise<void> {
  const dh = await fs.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * Append `content` to `file` and fsync it: O(content), for journals. A crash mid-append can
 * leave a torn last line (never acknowledged), which the journal's reader must expect; the
 * file's first creation should go through writeAtomic, so that its directory entry is durable.
 */
export async function appendDurable(file: string, content: string): Promise<void> {
  const fh = await fs.open(file, 'a', 0o600);
  try {
    await fh.appendFile(content);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * Append `content` to `file` atomically: the whole file is rewritten through writeAtomic,
 * so a crash leaves the old file or the old file plus all of `content`, never half a line.
 * Meant for small side files (rejected entries), not for logs.
 */
export async function appendAtomic(file: string, content: string): Promise<void> {
  await writeAtomic(file, ((await readIfExists(file)) ?? '') + content);
}

/** The text of `file`, or null when there is none (any other error is thrown). */
export async function readIfExists(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Writers killed between open and rename leave `FILE.PID[.N].tmp` behind, each a full copy.
 * Remove those whose writer process is gone.
 */
export async function removeStaleTemporaries(file: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.`;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = name.startsWith(prefix) ? /^(\d+)(?:\.\d+)?\.tmp$/.exec(name.slice(prefix.length)) : null;
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

/**
 * Can writeAtomic replace `file`? Creates the directory if needed, then writes, fsyncs and
 * removes a probe temporary beside the file (the file itself is left untouched). Resolves to
 * null when it can, or to the reason it cannot ("EROFS: read-only file system, open ...").
 * As root, permission bits do not stop writes; a read-only mount or a missing directory does.
 */
export async function checkWritable(file: string): Promise<string | null> {
  try {
    const st = await fs.stat(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (st && !st.isFile()) return `${file} exists and is not a regular file`;
    if (st) await fs.access(file, fs.constants.R_OK | fs.constants.W_OK);
    const dir = path.dirname(file);
    await fs.mkdir(dir, { recursive: true });
    const tmp = temporaryName(file);
    const fh = await fs.open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile('probe\n');
      await fh.sync();
    } finally {
      await fh.close();
      await fs.rm(tmp, { force: true });
    }
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
