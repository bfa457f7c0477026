// The feature fixture (every kind of entry an ext4 writer must keep) built by
// diskwright: e2fsck -fn is clean, and the tree read back through the kernel
// (read-only loop mount) and through debugfs equals the source.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diskwright } from '../../cli/run.ts';
import { makeFeatureFixture, type FixtureInfo } from '../../oracle/fixture.ts';
import { diffSnapshots, snapshotTree, snapshotViaDebugfs, type Snapshot } from '../../oracle/snapshot.ts';
import { debugfs, dumpe2fs, e2fsck, requireRoot, withLoopMount } from '../../oracle/tools.ts';

let work: string;
let fixture: FixtureInfo;
let source: Snapshot;
let img: string;

before(() => {
  requireRoot('the feature fixture (device nodes, owners)');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-features-'));
  fixture = makeFeatureFixture(path.join(work, 'src'));
  source = snapshotTree(fixture.root);
  img = path.join(work, 'features.img');
  const r = diskwright(['mkfs', 'ext4', fixture.root, '-o', img, '--label', 'features', '--free', '1M']);
  assert.equal(r.status, 0, r.stderr);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('e2fsck -fn finds nothing', () => {
  const r = e2fsck(img);
  assert.deepEqual(r.problems, [], r.output);
  assert.ok(r.clean);
});

test('features and superblock as promised', () => {
  const d = dumpe2fs(img);
  for (const f of ['has_journal', 'ext_attr', 'dir_index', 'filetype', 'extent', '64bit', 'flex_bg', 'sparse_super',
    'large_file', 'huge_file', 'dir_nlink', 'extra_isize', 'metadata_csum']) {
    assert.ok(d['Filesystem features'].split(' ').includes(f), f);
  }
  assert.equal(d['Block size'], '4096');
  assert.equal(d['Filesystem volume name'], 'features');
  assert.equal(d['Filesystem flags'].trim(), 'unsigned_directory_hash');
  assert.equal(d['Default directory hash'], 'half_md4');
});

test('loop-mounted image equals the source', async () => {
  const mounted = await withLoopMount(img, (mnt) => snapshotTree(mnt));
  assert.deepEqual(diffSnapshots(source, mounted, { labels: ['source', 'image'] }), []);
  assert.equal(mounted.size, source.size);
});

test('debugfs reads the same tree', async () => {
  const viaDebugfs = await snapshotViaDebugfs(img);
  assert.deepEqual(diffSnapshots(source, viaDebugfs, { labels: ['source', 'debugfs'] }), []);
});

test('sparse files keep their holes; big sparse file uses an extent tree', () => {
  const out = debugfs(img, ['stat /sparse/big-6g']).stdout.toString('latin1');
  const blockcount = Number(/Blockcount: (\d+)/.exec(out)?.[1]);
  const size = Number(/Size: (\d+)/.exec(out)?.[1]);
  assert.ok(size > 4 * 2 ** 30, `apparent size ${size}`);
  assert.ok(blockcount * 512 < size / 100, `allocated ${blockcount * 512} bytes of ${size}`);
  assert.match(out, /Level Entries|\(ETB\d*\)/, 'extent tree blocks listed');
});
