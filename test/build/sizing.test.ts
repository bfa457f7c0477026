// diskSize auto is the smallest whole-MiB disk: one MiB less cannot give the
// root filesystem additionalSpace free and its free inodes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planBuild } from '../../src/api/build.ts';
import { validateConfig } from '../../src/config/load.ts';
import { CONTENTS, makeBuildSources } from './fixture.ts';

let work: string;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-sizing-'));
  makeBuildSources(work);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const MiB = 2 ** 20;

for (const type of ['legacy', 'efi', 'hybrid', 'none'] as const) {
  test(`${type}: auto is the smallest whole-MiB disk for the content, additionalSpace and its inodes`, () => {
    const raw = { partitionTableType: type, root: 'rootfs', contents: CONTENTS, additionalSpace: '20M', bootSize: '40M' };
    const plan = (extra: object) => {
      const cfg = validateConfig({ ...raw, ...extra }, 'test.json');
      return planBuild({ config: cfg, given: new Set(Object.keys(raw)), baseDir: work });
    };
    const auto = plan({});
    const root = auto.layout.partitions.find((p) => p.role === 'root')!.filesystem!;
    assert.equal(auto.layout.size % MiB, 0);
    assert.ok(root.freeBytes >= 20 * MiB, `free ${root.freeBytes}`);
    assert.ok(root.freeInodes! >= (20 * MiB) / 16384, `free inodes ${root.freeInodes}`);
    // The same disk given as a fixed size is the same image.
    const fixed = plan({ diskSize: auto.layout.size / MiB });
    assert.deepEqual(fixed.layout.partitions.map((p) => [p.start, p.size]), auto.layout.partitions.map((p) => [p.start, p.size]));
    // One MiB less: the root filesystem cannot keep both.
    let smaller: ReturnType<typeof plan> | undefined;
    try {
      smaller = plan({ diskSize: auto.layout.size / MiB - 1 });
    } catch (err) {
      assert.match(String(err), /too small/);
    }
    if (smaller) {
      const fs1 = smaller.layout.partitions.find((p) => p.role === 'root')!.filesystem!;
      assert.ok(fs1.freeBytes < 20 * MiB || fs1.freeInodes! < (20 * MiB) / 16384, `${fs1.freeBytes} bytes, ${fs1.freeInodes} inodes free`);
    }
  });
}
