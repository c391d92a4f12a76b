/**
 * Address and subnet lists for hooks: entries are an IPv4 or IPv6 address or a CIDR
 * (`203.0.113.0/24`, `2001:db8::/32`), from options or from plain-text list files (one entry a
 * line, `#` starts a comment, blank lines ignored). IPv4-mapped IPv6 addresses match as IPv4.
 * Lookup costs one set lookup per distinct prefix length in the list, however long it is.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import ipaddr from 'ipaddr.js';

type Kind = 'ipv4' | 'ipv6';

/** Parse an address (no prefix): IPv4 only in four-part decimal, IPv4-mapped IPv6 → IPv4. */
function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const bare = text.replace(/%.*$/, '');
  if (ipaddr.IPv4.isValidFourPartDecimal(bare)) return ipaddr.IPv4.parse(bare);
  if (!ipaddr.IPv6.isValid(bare)) return null;
  const a = ipaddr.IPv6.parse(bare);
  return a.isIPv4MappedAddress() ? a.toIPv4Address() : a;
}

/** Parse one entry into [address, prefix length], or throw with a message saying why. */
export function parseEntry(text: string): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const a = parseAddress(addrText);
  if (!a) throw new Error(`not an IPv4/IPv6 address or CIDR: ${JSON.stringify(text)}`);
  const max = a.kind() === 'ipv4' ? 32 : 128;
  if (slash < 0) return [a, max];
  const bitsText = text.slice(slash + 1);
  let bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!(bits >= 0 && bits <= (ipaddr.IPv6.isValid(addrText) ? 128 : max))) throw new Error(`bad prefix length in ${JSON.stringify(text)}`);
  // ::ffff:10.0.0.0/104 is 10.0.0.0/8
  if (a.kind() === 'ipv4' && ipaddr.IPv6.isValid(addrText)) {
    if (bits < 96) throw new Error(`an IPv4-mapped prefix must be /96 or longer: ${JSON.stringify(text)}`);
    bits -= 96;
  }
  return [a, bits];
}

function key(bytes: number[], bits: number): string {
  let s = '';
  for (let i = 0; i < bytes.length && bits > 0; i++, bits -= 8) {
    const b = bits >= 8 ? bytes[i]! : bytes[i]! & (0xff << (8 - bits)) & 0xff;
    s += b.toString(16).padStart(2, '0');
  }
  return s;
}

export class AddressList {
  /** per family: prefix length → set of network keys */
  readonly #nets: Record<Kind, Map<number, Set<string>>> = { ipv4: new Map(), ipv6: new Map() };
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Add an address or CIDR; throws on a bad entry. */
  add(entry: string): void {
    const [a, bits] = parseEntry(entry.trim());
    const byLen = this.#nets[a.kind()];
    let set = byLen.get(bits);
    if (!set) byLen.set(bits, (set = new Set()));
    const k = key(a.toByteArray(), bits);
    if (!set.has(k)) {
      set.add(k);
      this.#size++;
    }
  }

  /** True when `address` (as the proxy reports it) is in the list; false for unparseable text. */
  has(address: string): boolean {
    const a = parseAddress(address);
    if (!a) return false;
    const bytes = a.toByteArray();
    for (const [bits, set] of this.#nets[a.kind()]) if (set.has(key(bytes, bits))) return true;
    return false;
  }
}

/**
 * Read a list file: one address or CIDR a line; `#` to the end of the line is a comment.
 * A relative path resolves against process.cwd(). Errors name the file and the line.
 */
export async function loadListFile(file: string, into: AddressList): Promise<number> {
  const full = path.resolve(process.cwd(), file);
  let text: string;
  try {
    text = await readFile(full, 'utf8');
  } catch (err) {
    throw new Error(`cannot read list file ${full}: ${(err as Error).message}`);
  }
  let n = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/#.*$/, '').trim();
    if (!line) continue;
    try {
      into.add(line);
    } catch (err) {
      throw new Error(`${full} line ${i + 1}: ${(err as Error).message}`);
    }
    n++;
  }
  return n;
}
