// Popularity layering: closure-graph.py's worked example, and random graphs
// against a plain recursive reading of the definition (no memo, no stack
// tricks, numbers grouped and sorted the way the script's docstring says).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cutLayers, packageNameKey, popularity, popularityOrder, sizeLayers, type GraphPath } from '../../src/container/popularity.ts';
import { pattern } from '../property/pattern.ts';

const S = '/nix/store/';
/** A store path named `name` with a 32-character hash part made of `h`. */
const sp = (h: string, name: string) => `${S}${h.repeat(32)}-${name}`;

// The docstring's graph:
//     A - B - C - D -\
//      \   \   \      \
//       \   \   \ - E ---- F
//        \- G
// with E also referred to by B. Hash parts run against the names, so the
// tie between B and G (both 2) is decided by name, not hash.
const A = sp('z', 'A');
const B = sp('y', 'B');
const C = sp('x', 'C');
const D = sp('w', 'D');
const E = sp('v', 'E');
const F = sp('s', 'F');
const G = sp('a', 'G');
const EXAMPLE: GraphPath[] = [
  { path: A, references: [A, B, G] },
  { path: B, references: [C, E] },
  { path: C, references: [D, E, C] },
  { path: D, references: [F] },
  { path: E, references: [F] },
  { path: F, references: [F] },
  { path: G, references: [] },
];

test("closure-graph.py's worked example: popularities and order", () => {
  const pop = popularity(EXAMPLE);
  assert.deepEqual(Object.fromEntries([...pop].map(([p, n]) => [p.slice(-1), Number(n)])), { A: 1, B: 2, C: 3, D: 4, E: 5, F: 9, G: 2 });
  assert.deepEqual(popularityOrder(EXAMPLE).map((p) => p.slice(-1)), ['F', 'E', 'D', 'C', 'B', 'G', 'A']);
});

test('ties: the name decides before the hash part', () => {
  assert.equal(packageNameKey(`${S}abc-foo-1.0`), `foo-1.0-${S}abc`);
  const h1 = sp('1', 'foo-1.0');
  const h0 = sp('0', 'foo-1.0-bin');
  const h2 = sp('2', 'foo-1.0');
  const graph = [h1, h0, h2].map((p) => ({ path: p, references: [] }));
  // "foo-1.0-/nix..." sorts before "foo-1.0-bin-..." ('/' < 'b'); equal names by hash.
  assert.deepEqual(popularityOrder(graph), [h1, h2, h0]);
});

test("the cut: dockerTools' counts at layers - 1, layers and layers + 1 paths, and none", () => {
  const paths = (n: number) => Array.from({ length: n }, (_, i) => `p${i}`);
  assert.deepEqual(cutLayers(paths(3), 4), [['p0'], ['p1'], ['p2']]);
  assert.deepEqual(cutLayers(paths(4), 4), [['p0'], ['p1'], ['p2'], ['p3']]);
  assert.deepEqual(cutLayers(paths(5), 4), [['p0'], ['p1'], ['p2'], ['p3', 'p4']]);
  assert.deepEqual(cutLayers(paths(0), 4), []);
  assert.deepEqual(cutLayers(paths(3), 1), [['p0', 'p1', 'p2']]);
});

test('references that form a cycle are refused', () => {
  assert.throws(
    () => popularity([{ path: A, references: [B] }, { path: B, references: [C] }, { path: C, references: [B] }, { path: G, references: [A] }]),
    { code: 'REGISTRATION_INVALID' },
  );
});

/** The definition read literally: the contest of a set of children, recomputed every time. */
function refContest(children: string[], refs: Map<string, string[]>): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const c of children) {
    out.set(c, (out.get(c) ?? 0n) + 1n);
    const sub = refContest((refs.get(c) ?? []).filter((r) => r !== c), refs);
    for (const [y, n] of sub) out.set(y, (out.get(y) ?? 0n) + n + 1n);
  }
  return out;
}

function refOrder(graph: GraphPath[]): string[] {
  const refs = new Map(graph.map((g) => [g.path, [...new Set(g.references)]]));
  const roots = graph.map((g) => g.path).filter((p) => !graph.some((o) => o.path !== p && o.references.includes(p)));
  const pop = refContest(roots, refs);
  // Group by popularity, least first; each group sorted by name key and reversed; then all reversed.
  const levels = [...new Set(pop.values())].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const flat: string[] = [];
  for (const level of levels) {
    const group = [...pop].filter(([, n]) => n === level).map(([p]) => p);
    group.sort((a, b) => Buffer.compare(Buffer.from(packageNameKey(a)), Buffer.from(packageNameKey(b))));
    flat.push(...group.reverse());
  }
  return flat.reverse();
}

/** A random DAG over n paths: edges only from lower to higher index, so no cycles. */
function randomGraph(seed: number, n: number): GraphPath[] {
  const r = pattern(seed, n * n + n);
  const names = Array.from({ length: n }, (_, i) => sp(String.fromCharCode(0x61 + (r[i] % 26)), `pkg${r[n + i] % 7}-${i % 3}`));
  const unique = [...new Set(names)];
  return unique.map((p, i) => ({
    path: p,
    references: unique.filter((_, j) => j > i && r[n + i * n + j] < 60).concat(r[i] & 1 ? [p] : []),
    narSize: (r[n * n + i] + 1) * 50_000,
  }));
}

test('random graphs: the same popularities and order as the literal definition', () => {
  for (let seed = 1; seed <= 60; seed++) {
    const g = randomGraph(seed, 4 + (seed % 14));
    assert.deepEqual(popularityOrder(g), refOrder(g), `seed ${seed}`);
    const roots = g.map((x) => x.path).filter((p) => !g.some((o) => o.path !== p && o.references.includes(p)));
    const refs = new Map(g.map((x) => [x.path, [...x.references]]));
    assert.deepEqual(popularity(g), refContest(roots, refs), `seed ${seed}`);
  }
});

test('size layering: every path once, within budget; big popular paths alone; deterministic', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const g = randomGraph(seed, 10 + (seed % 14));
    for (const layers of [1, 2, 5, 12]) {
      const out = sizeLayers(g, layers, { minOwnLayer: 6_000_000 });
      assert.ok(out.length <= layers, `seed ${seed}: ${out.length} > ${layers}`);
      assert.deepEqual(out.flat().sort(), g.map((p) => p.path).sort(), `seed ${seed}`);
      assert.deepEqual(sizeLayers([...g].reverse(), layers, { minOwnLayer: 6_000_000 }), out);
      // A big path shares a layer only when the budget for own layers ran out.
      const big = (p: string) => g.find((x) => x.path === p)!.narSize! >= 6_000_000;
      const sharedBig = out.filter((l) => l.length > 1).flat().some(big);
      const ownBig = out.filter((l) => l.length === 1 && big(l[0])).length;
      assert.ok(!sharedBig || ownBig === layers - 1, `seed ${seed}, ${layers} layers`);
    }
  }
  // A big library under everything gets a layer of its own; small leaves share.
  const libc = sp('c', 'glibc-2.40');
  const graph: GraphPath[] = [
    { path: libc, references: [], narSize: 30 << 20 },
    ...Array.from({ length: 6 }, (_, i) => ({ path: sp(String(i), `tool${i}`), references: [libc], narSize: 10_000 })),
    { path: sp('a', 'app'), references: Array.from({ length: 6 }, (_, i) => sp(String(i), `tool${i}`)), narSize: 2 << 20 },
  ];
  const out = sizeLayers(graph, 3);
  assert.deepEqual(out[0], [libc]);
  assert.equal(out.length, 3);
  assert.ok(out.some((l) => l.length === 1 && l[0] === sp('a', 'app')));
});
