/**
 * The Redis Cluster part of the environment: REDIS_CLUSTER_NODES (seed nodes) and the hash tag the key prefix needs
 * on a cluster. Pure parsers; `loadConfig` (index.ts) turns their errors into config problems.
 */

/** One node of a Redis Cluster, as given in REDIS_CLUSTER_NODES. */
export interface ClusterNode {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses REDIS_CLUSTER_NODES: a comma list of `host:port` (IPv6 in brackets, `[::1]:7000`), at least one.
 * Any reachable subset of the cluster's masters will do: the client discovers the others.
 */
export function parseClusterNodes(text: string): ClusterNode[] {
  const nodes: ClusterNode[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(part);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65_535) throw new Error(`"${part}" is not host:port (e.g. 10.0.0.5:7000 or [::1]:7000)`);
    nodes.push({ host: (m[1] as string).replace(/^\[|\]$/g, ''), port });
  }
  if (nodes.length === 0) throw new Error('lists no node; expected host:port,host:port...');
  return nodes;
}

/** The Redis Cluster hash tag of keys starting with `prefix` (the text between its first `{` and the next `}`), or null. */
export function hashTagOf(prefix: string): string | null {
  const open = prefix.indexOf('{');
  const close = open < 0 ? -1 : prefix.indexOf('}', open + 1);
  return close > open + 1 ? prefix.slice(open + 1, close) : null;
}
