import { isIPv4, isIPv6 } from 'node:net';

/**
 * IP ranges of boundaries: a CIDR (`10.1.0.0/16`, `fd00::/8`) or an
 * inclusive range (`10.1.0.1-10.1.0.99`). Addresses are compared as
 * 128-bit integers; IPv4 (and IPv4-mapped IPv6, as Node reports a v4 peer
 * on a dual-stack socket) map into ::ffff:0:0/96.
 */
export interface IpRange {
  first: bigint;
  last: bigint;
}

const V4_MAPPED = 0xffffn << 32n;

function v4ToBig(ip: string): bigint {
  return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function v6ToBig(ip: string): bigint {
  let text = ip;
  let tail = 0n;
  let tailGroups = 0;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null && v4[1] !== undefined) {
    tail = v4ToBig(v4[1]);
    tailGroups = 2;
    text = text.slice(0, -v4[1].length);
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const [head = '', rest] = text.split('::');
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const missing = 8 - tailGroups - left.length - right.length;
  const all = [...left, ...Array<string>(rest === undefined ? 0 : missing).fill('0'), ...right];
  let value = 0n;
  for (const g of all) value = (value << 16n) | BigInt(parseInt(g, 16));
  return (value << BigInt(tailGroups * 16)) | tail;
}

/** An address as a 128-bit integer, or undefined when it is not an IP address. */
export function ipToBig(ip: string): bigint | undefined {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  if (isIPv4(bare)) return V4_MAPPED | v4ToBig(bare);
  if (isIPv6(bare)) return v6ToBig(bare.split('%')[0] ?? bare);
  return undefined;
}

/** Parses a boundary's range; undefined when it is not one. */
export function parseIpRange(text: string): IpRange | undefined {
  const t = text.trim();
  const slash = t.indexOf('/');
  if (slash > 0) {
    const base = t.slice(0, slash);
    const bits = t.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits)) return undefined;
    const value = ipToBig(base);
    if (value === undefined) return undefined;
    const width = isIPv4(base) ? 32 : 128;
    const prefix = Number(bits);
    if (prefix > width) return undefined;
    const hostBits = BigInt(width - prefix);
    const mask = (1n << hostBits) - 1n;
    return { first: value & ~mask, last: (value & ~mask) | mask };
  }
  const dash = t.indexOf('-');
  if (dash > 0) {
    const first = ipToBig(t.slice(0, dash));
    const last = ipToBig(t.slice(dash + 1));
    if (first === undefined || last === undefined || first > last) return undefined;
    return { first, last };
  }
  const single = ipToBig(t);
  return single === undefined ? undefined : { first: single, last: single };
}

export function inRange(range: IpRange, ip: bigint): boolean {
  return ip >= range.first && ip <= range.last;
}
