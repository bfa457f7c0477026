// A build prepares its root filesystem's tree once: the disk compiler sizes
// the ext4 partition for its content and then plans it at the partition's
// size from the same prepared tree (src/fs/ext4/driver.ts). Counted by the
// root directory's reads, against those of one planExt4 call; and the image
// is the one planning afresh at that size makes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { compileDisk } from '../../src/disk/compile.ts';
import type { DiskSpec } from '../../src/disk/spec.ts';
import { planExt4 } from '../../src/fs/ext4/planner.ts';
import { scanSources } from '../../src/tree/scan.ts';
import type { DirEntry } from '../../src/tree/model.ts';
import { imageSource } from '../../src/read/source.ts';
import type { Image } from '../../src/image/extent-map.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-plan-once-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
fs.mkdirSync(path.join(dir, 'etc'));
fs.writeFileSync(path.join(dir, 'etc', 'hostname'), 'once\n');
for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(dir, `f${i}`), Buffer.alloc(i * 1000, i));

/** The root with a children map that counts every read of it. */
function countedRoot(): { root: DirEntry; reads: () => number } {
  const root = scanSources([dir]);
  let n = 0;
  const inner = root.children;
  const counted = new Proxy(inner, {
    get(target, prop) {
      n++;
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  (root as { children: typeof inner }).children = counted;
  return { root, reads: () => n };
}

const OPTS = { seed: 'plan-once', epoch: 1_700_000_000, label: 'root' };
const spec = (root: DirEntry): DiskSpec => ({
  table: 'gpt', alignment: 2 ** 20, diskSize: 'auto', rawBlobs: [], seed: 'plan-once', diskGuid: '11111111-2222-4333-8444-555555555555',
  partitions: [{ key: 'root', label: 'root', role: 'root', grow: true, guid: '11111111-2222-4333-8444-666666666666', content: { fs: 'ext4', tree: root, options: OPTS, freeBytes: 5 * 2 ** 20 } }],
});

function digest(image: Image, from = 0, length = image.size): string {
  return createHash('sha256').update(imageSource(image).read(from, length)).digest('hex');
}

test('an auto-sized ext4 partition: the tree is prepared once, and the image equals planning it afresh at its size', () => {
  const one = countedRoot();
  planExt4(one.root, { ...OPTS, size: 'auto' });
  const perPlan = one.reads();
  assert.ok(perPlan > 0);

  const built = countedRoot();
  const c = compileDisk(spec(built.root));
  assert.equal(built.reads(), perPlan, 'compileDisk read the root as often as one plan does');

  const p = c.partitions[0];
  const fresh = planExt4(scanSources([dir]), { ...OPTS, size: Math.floor(p.size / 4096) * 4096, freeBytes: 5 * 2 ** 20 });
  assert.equal(digest(c.disk, p.start, fresh.image.size), digest(fresh.image));
});
