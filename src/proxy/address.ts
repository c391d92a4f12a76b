import ipaddr from 'ipaddr.js';

/** A peer address normalised so that ::ffff:1.2.3.4 and 1.2.3.4 are the same peer. */
export function normalizeAddress(address: string): string {
  const a = parseAddress(address);
  return a ? a.toString() : address;
}

export function parseAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const bare = address.replace(/%.*$/, '');
  if (!ipaddr.isValid(bare)) return null;
  const a = ipaddr.parse(bare);
  return a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a;
}

/** The group that per-subnet limits count: /24 for IPv4, /64 for IPv6. */
export function subnetKey(address: string): string {
  const a = parseAddress(address);
  if (!a) return address;
  if (a.kind() === 'ipv4') {
    const b = a.toByteArray();
    return `${b[0]}.${b[1]}.${b[2]}.0/24`;
  }
  const parts = (a as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${parts.join(':')}::/64`;
}

/** 16 bytes as the version message carries an address: IPv6, or IPv4-mapped IPv6. */
export function addressTo16Bytes(address: string): Buffer | null {
  const a = parseAddress(address);
  if (!a) return null;
  const v6 = a.kind() === 'ipv4' ? (a as ipaddr.IPv4).toIPv4MappedAddress() : (a as ipaddr.IPv6);
  return Buffer.from(v6.toByteArray());
}

/** A parsed CIDR (a single address is /32 or /128). */
export interface Subnet {
  text: string;
  addr: ipaddr.IPv4 | ipaddr.IPv6;
  bits: number;
}

export function parseSubnet(text: string): Subnet | null {
  const t = text.trim();
  try {
    if (t.includes('/')) {
      const [addr, bits] = ipaddr.parseCIDR(t);
      const a = addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96 ? (addr as ipaddr.IPv6).toIPv4Address() : addr;
      const b = a === addr ? bits : bits - 96;
      const network = networkOf(a, b);
      return { text: `${network.toString()}/${b}`, addr: network, bits: b };
    }
  } catch {
    return null;
  }
  const a = parseAddress(t);
  if (!a) return null;
  const bits = a.kind() === 'ipv4' ? 32 : 128;
  return { text: `${a.toString()}/${bits}`, addr: a, bits };
}

/** The canonical "network/bits" of the subnet of `a` with `bits`: the text a Subnet (and a ban) is keyed by. */
export function subnetText(a: ipaddr.IPv4 | ipaddr.IPv6, bits: number): string {
  return `${networkOf(a, bits).toString()}/${bits}`;
}

function networkOf(a: ipaddr.IPv4 | ipaddr.IPv6, bits: number): ipaddr.IPv4 | ipaddr.IPv6 {
  const bytes = a.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return ipaddr.fromByteArray(bytes);
}

export function subnetContains(subnet: Subnet, address: string): boolean {
  const a = parseAddress(address);
  if (!a || a.kind() !== subnet.addr.kind()) return false;
  return a.match(subnet.addr, subnet.bits);
}
