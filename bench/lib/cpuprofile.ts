/**
 * Summarises a V8 CPU profile (from `npm run bench -- --profile DIR`): self time per package / source file and
 * per function, and total (inclusive) time of our own functions.
 *
 * `tsx bench/lib/cpuprofile.ts FILE.cpuprofile [--top N]`
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** `node_modules/<pkg>` (scoped too), `src/<dir>/<file>`, or the URL / `(program)` for the rest. */
export function moduleOf(url: string): string {
  if (!url) return '(native/vm)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm && !url.includes('.cache/kie-bench-dist')) return nm[1] as string;
  const own = /(?:kie-bench-dist\/)?((?:src|bench)\/.*)$/.exec(url);
  if (own) return own[1] as string;
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

export function summarise(profile: Profile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const bySelfModule = new Map<string, number>();
  const bySelfFn = new Map<string, number>();
  const inclusiveOwn = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const mod = n.callFrame.url ? moduleOf(n.callFrame.url) : n.callFrame.functionName || '(anonymous)';
    bySelfModule.set(mod, (bySelfModule.get(mod) ?? 0) + us);
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${moduleOf(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    bySelfFn.set(fn, (bySelfFn.get(fn) ?? 0) + us);
    // inclusive time of our own frames (each counted once per sample stack)
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (!/\/(src|bench)\//.test(f.url) || f.url.includes('node_modules/') && !f.url.includes('kie-bench-dist')) continue;
      const key = `${f.functionName || '(anonymous)'} ${moduleOf(f.url)}:${f.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusiveOwn.set(key, (inclusiveOwn.get(key) ?? 0) + us);
    }
  }
  const fmt = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`)
      .join('\n');
  return [
    `sampled ${(total / 1000).toFixed(0)} ms over ${((profile.endTime - profile.startTime) / 1000).toFixed(0)} ms`,
    `\nself time by module:\n${fmt(bySelfModule)}`,
    `\nself time by function:\n${fmt(bySelfFn)}`,
    `\ninclusive time of our own functions:\n${fmt(inclusiveOwn)}`,
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: tsx bench/lib/cpuprofile.ts FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const topIdx = process.argv.indexOf('--top');
  const top = topIdx > 0 ? Number(process.argv[topIdx + 1]) : 25;
  process.stdout.write(summarise(JSON.parse(readFileSync(file, 'utf8')) as Profile, top) + '\n');
}
