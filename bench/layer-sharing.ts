// How many bytes two images on a common base share as identical layers, with
// popularity and with size layering, at several maxLayers. No big Nix
// closure is at hand on the CI machine, so the host's Debian dependency graph
// stands in for one: packages as store paths, Installed-Size as narSize,
// dependency cycles (which store paths cannot have) broken.
//   node bench/layer-sharing.ts git nix-bin
import { spawnSync } from 'node:child_process';
import { cutLayers, popularityOrder, sizeLayers, type GraphPath } from '../src/container/popularity.ts';
const out = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Installed-Size} ${Depends} ${Pre-Depends}\n']).stdout.toString();
const info = new Map<string, { size: number; deps: string[] }>();
for (const line of out.trim().split('\n')) {
  const [pkg, size, ...rest] = line.split(' ');
  const deps = rest.join(' ').split(',').map((d) => d.trim().split(/[ :|(]/)[0]).filter(Boolean);
  info.set(pkg, { size: Number(size) * 1024, deps });
}
const sp = (p: string) => `/nix/store/${'0'.repeat(32)}-${p}`;
function closure(roots: string[]): GraphPath[] {
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p) || !info.has(p)) continue;
    seen.add(p);
    stack.push(...info.get(p)!.deps);
  }
  // Debian has dependency cycles (libc6 <-> libgcc-s1); store paths cannot: drop DFS back edges.
  const keep = new Map<string, string[]>();
  const state = new Map<string, number>();
  const visit = (p: string) => {
    state.set(p, 1);
    const ks: string[] = [];
    for (const d of new Set(info.get(p)!.deps)) {
      if (!seen.has(d) || d === p || state.get(d) === 1) continue; // 1: on the DFS stack, a back edge
      if (!state.has(d)) visit(d);
      ks.push(d);
    }
    keep.set(p, ks);
    state.set(p, 2);
  };
  for (const p of [...seen].sort()) if (!state.has(p)) visit(p);
  return [...seen].map((p) => ({ path: sp(p), references: keep.get(p)!.map(sp), narSize: info.get(p)!.size }));
}
const apps = process.argv.length > 3 ? process.argv.slice(2) : ['git', 'nix-bin'];
const [a, b] = [closure([apps[0]]), closure([apps[1]])];
const size = new Map([...a, ...b].map((g) => [g.path, g.narSize!]));
const bytes = (l: string[]) => l.reduce((s, p) => s + size.get(p)!, 0);
for (const maxLayers of [10, 25, 100]) {
  for (const strat of ['popularity', 'size'] as const) {
    const L = (g: GraphPath[]) => (strat === 'size' ? sizeLayers(g, maxLayers - 1) : cutLayers(popularityOrder(g), maxLayers - 1));
    const la = L(a);
    const lb = L(b);
    const keys = new Set(lb.map((l) => [...l].sort().join(' ')));
    const shared = la.filter((l) => keys.has([...l].sort().join(' '))).reduce((s, l) => s + bytes(l), 0);
    const common = a.filter((g) => size.has(g.path) && b.some((x) => x.path === g.path)).reduce((s, g) => s + g.narSize!, 0);
    console.log(`${apps.join(' vs ')} maxLayers ${maxLayers} ${strat}: A ${(bytes(la.flat())/1048576).toFixed(1)} MiB, B ${(bytes(lb.flat())/1048576).toFixed(1)} MiB, common paths ${(common/1048576).toFixed(1)} MiB, shared layers ${(shared/1048576).toFixed(1)} MiB`);
  }
}
