// The size planner and closure sizes on hand-made layouts: every node's
// figures are its children's sums even when ranges overlap, reach past their
// filesystem or partition, or a container stores only parts of the disk;
// directories fold to fit a node budget; closures follow reference cycles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { limitNodes, MAX_DEPTH, planSizes, storedCounter, type SizeNode } from '../../src/report/plan.ts';
import { closureSizes } from '../../src/report/closure.ts';
import type { OwnedRange } from '../../src/read/entry.ts';

function sums(n: SizeNode): void {
  if (!n.children) return;
  assert.equal(n.children.reduce((s, k) => s + k.size, 0), n.size, `${n.name}: sizes`);
  assert.equal(n.children.reduce((s, k) => s + k.span, 0), n.span, `${n.name}: spans`);
  n.children.forEach(sums);
}

const find = (n: SizeNode, name: string): SizeNode | undefined => n.name === name ? n : n.children?.map((k) => find(k, name)).find(Boolean);

test('stored bytes of any range, from the stored runs', () => {
  const c = storedCounter([[10, 20], [30, 40]]);
  assert.equal(c(0, 100), 20);
  assert.equal(c(15, 35), 10);
  assert.equal(c(20, 30), 0);
  assert.equal(c(40, 10), 0);
  assert.equal(storedCounter(null)(5, 9), 4);
});

test('hostile layouts: overlapping partitions and ranges, ranges past the filesystem; sums stay exact', () => {
  const ranges: OwnedRange[] = [
    { offset: 0, length: 4096, kind: 'metadata', what: 'superblock' },
    { offset: 4096, length: 8192, kind: 'metadata', what: 'inode table (group 0)' },
    { offset: 8192, length: 8192, kind: 'data', what: 'file', path: '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-big/f' },
    { offset: 16384, length: 4096, kind: 'data', what: 'file', path: '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-big/g' },
    { offset: 20480, length: 4096, kind: 'data', what: 'directory', path: '/nix/store' },
    { offset: 24576, length: 1 << 30, kind: 'data', what: 'file', path: '/huge' },
  ];
  const fs = { type: 'ext4', label: 'x', size: 65536, ranges, storeDirs: ['/nix/store'], nixStoreDir: '/nix/store' };
  const plan = planSizes({
    diskSize: 200_000,
    stored: [[0, 30_000], [70_000, 90_000]],
    allocatedSize: 60_000,
    table: [{ offset: 0, length: 512, what: 'MBR' }],
    volumes: [
      { name: 'partition 1', offset: 1024, length: 100_000, fs },
      { name: 'partition 2', offset: 50_000, length: 300_000 },
    ],
  });
  sums(plan.root);
  assert.equal(plan.root.span, 200_000);
  assert.equal(plan.root.size, 60_000, 'stored 50,000 plus 10,000 of file overhead');
  assert.ok(plan.warnings.some((w) => /partition 2: overlaps/.test(w)));
  assert.ok(plan.warnings.some((w) => /overlaps what comes before it/.test(w) && /big\/g|nix\/store/.test(w)), plan.warnings.join('\n'));
  assert.equal(find(plan.root, 'huge')!.span, 65536 - 24576, 'cut at the filesystem\'s end');
  assert.deepEqual(plan.storePaths.map((p) => p.path), ['/nix/store/0123456789abcdfghijklmnpqrsvwxyz-big']);
  assert.equal(plan.storePaths[0].span, (16384 - 12288) + 4096, 'f from the inode table\'s end, all of g');
});

test('a path deeper than MAX_DEPTH counts for its ancestor at that depth', () => {
  const deep = '/d'.repeat(MAX_DEPTH + 500) + '/file';
  const fs = { type: 'ext4', label: '', size: 8192, ranges: [{ offset: 0, length: 4096, kind: 'data' as const, what: 'file', path: deep }], storeDirs: [], nixStoreDir: '/nix/store' };
  const plan = planSizes({ diskSize: 8192, stored: null, allocatedSize: 0, table: [], volumes: [{ name: 'filesystem', offset: 0, length: 8192, fs }] });
  sums(plan.root);
  let depth = 0;
  for (let n: SizeNode | undefined = find(plan.root, '/ (files)'); n?.children; n = n.children[0]) depth++;
  assert.equal(depth, MAX_DEPTH);
});

test('a node budget folds the smallest directories; store paths keep their boxes', () => {
  const dir = (name: string, n: number, kind: SizeNode['kind'] = 'dir'): SizeNode => ({
    name, kind, size: n * 10, span: n * 10, children: Array.from({ length: n }, (_, i) => ({ name: `f${i}`, kind: 'file', size: 10, span: 10 })),
  });
  const root: SizeNode = { name: 'disk', kind: 'disk', size: 0, span: 0, children: [dir('big', 500), dir('small', 20), dir('p', 30, 'store-path')] };
  root.size = root.span = root.children!.reduce((s, k) => s + k.size, 0);
  const limited = limitNodes(root, 100);
  sums(limited);
  assert.equal(find(limited, 'big')!.children, undefined);
  assert.ok(find(limited, 'p'), 'the store path stays');
  assert.equal(limitNodes(root, 10_000), root);
});

test('closure sizes follow references through cycles, once per path', () => {
  const paths = [
    { path: '/nix/store/a', size: 100, span: 100 },
    { path: '/nix/store/b', size: 10, span: 10 },
    { path: '/nix/store/c', size: 1, span: 1 },
  ];
  const refs = new Map([['/nix/store/a', ['/nix/store/b', '/nix/store/a']], ['/nix/store/b', ['/nix/store/c', '/nix/store/missing']], ['/nix/store/c', ['/nix/store/b']]]);
  const rows = closureSizes(paths, { source: 'test', refs });
  assert.deepEqual(rows.map((r) => [r.path, r.closureSize, r.closureCount]), [['/nix/store/a', 111, 3], ['/nix/store/b', 11, 2], ['/nix/store/c', 11, 2]]);
});
