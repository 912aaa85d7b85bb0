/**
 * Which hosts an input URL may point at. kie.ai fetches the URL itself, and the worker may fetch it too (to check
 * or upload it), so a URL naming a private, loopback or link-local address is refused unless ALLOW_PRIVATE_URLS is
 * set (demos and tests against the local simulator). The producer checks literal hosts; the worker reuses
 * `isPrivateAddress` for the addresses a host name resolves to.
 */
import { BlockList, isIP } from 'node:net';

/** The refused ranges. IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) match their IPv4 range. */
const PRIVATE_RANGES: readonly [network: string, prefix: number, family: 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'], // "this network", 0.0.0.0 reaches the local host
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'], // carrier-grade NAT, internal to providers
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'], // link-local, cloud metadata services
  ['172.16.0.0', 12, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['::', 128, 'ipv6'], // unspecified
  ['::1', 128, 'ipv6'],
  ['fc00::', 7, 'ipv6'], // unique local
  ['fe80::', 10, 'ipv6'], // link-local
];

const blockList = new BlockList();
for (const [network, prefix, family] of PRIVATE_RANGES) blockList.addSubnet(network, prefix, family);

/**
 * True when `ip` (a literal IPv4 or IPv6 address, brackets allowed) lies in a private, loopback, link-local or
 * unspecified range. Anything that is not an IP address answers false.
 */
export function isPrivateAddress(ip: string): boolean {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const family = isIP(bare);
  if (family === 0) return false;
  return blockList.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

/** `localhost` and its sub-domains (RFC 6761) always mean the local host. */
function isLocalhostName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * Checks the host of an http(s) URL when it is a literal address (or `localhost`) without resolving anything.
 * Returns a reason a person can act on, or null when the URL may be used.
 * WHATWG URL parsing already normalises numeric forms (`http://2130706433/`, `http://0x7f.1/` → `127.0.0.1`).
 */
export function literalHostPolicy(url: URL | string, allowPrivate: boolean): string | null {
  if (allowPrivate) return null;
  let hostname: string;
  try {
    hostname = (typeof url === 'string' ? new URL(url) : url).hostname;
  } catch {
    return null; // not a URL: other checks report that
  }
  if (isLocalhostName(hostname) || isPrivateAddress(hostname)) {
    return `host ${hostname} resolves to a private address; set ALLOW_PRIVATE_URLS=true to allow`;
  }
  return null;
}
