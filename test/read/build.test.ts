// Whole disks diskwright builds (test/build/fixture.ts): the readers find the
// table layout.json describes, and every partition's filesystem holds exactly
// what the build put there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DiskLayout } from '../../src/api/build.ts';
import { DiskwrightError } from '../../src/errors.ts';
import { Ext4Reader } from '../../src/read/ext4.ts';
import { FatReader } from '../../src/read/fat.ts';
import { openFilesystem, readPartitionTable, selectVolume } from '../../src/read/index.ts';
import { fileSource, type FileSource } from '../../src/read/source.ts';
import { diskwright } from '../cli/run.ts';
import { diffSnapshots, snapshotTree } from '../oracle/snapshot.ts';
import { requireRoot } from '../oracle/tools.ts';
import { CONTENTS, EPOCH, makeBuildSources, stageExpectedRoot } from '../build/fixture.ts';
import { snapshotReader } from './helpers.ts';

let work: string;
let expectedRoot: string;
const open: FileSource[] = [];

before(() => {
  requireRoot('the expected tree (chown)');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-read-build-'));
  makeBuildSources(work);
  expectedRoot = path.join(work, 'expected-root');
  stageExpectedRoot(work, expectedRoot);
});
after(() => {
  for (const s of open) s.close();
  fs.rmSync(work, { recursive: true, force: true });
});

function build(type: string): { image: string; layout: DiskLayout } {
  const config = {
    partitionTableType: type, root: 'rootfs', contents: CONTENTS, additionalSpace: '8M', epoch: EPOCH,
    bootSize: type === 'efixbootldr' ? '128M' : '40M',
    ...(type !== 'legacy' ? { espContents: [{ source: 'esp/', target: '/' }] } : {}),
    ...(type === 'efixbootldr' ? { xbootldrContents: [{ source: 'xbootldr/nixos', target: '/EFI/nixos' }] } : {}),
  };
  const cfg = path.join(work, `${type}.json`);
  fs.writeFileSync(cfg, JSON.stringify(config));
  const out = path.join(work, `out-${type}`);
  const r = diskwright(['build', cfg, '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  return { image: path.join(out, 'nixos.img'), layout: JSON.parse(fs.readFileSync(path.join(out, 'layout.json'), 'utf8')) };
}

/** A FAT volume's files and directories (names as text) with their bytes. */
function fatFiles(r: FatReader): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of r.walk()) if (e.path !== '/') out.set(Buffer.from(e.path, 'latin1').toString('utf8'), e.type === 'dir' ? 'dir' : r.read(e).toString('hex'));
  return out;
}

function hostFiles(root: string, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of fs.readdirSync(root)) {
    const p = path.join(root, name);
    if (fs.statSync(p).isDirectory()) {
      out.set(`${prefix}/${name}`, 'dir');
      for (const [k, v] of hostFiles(p, `${prefix}/${name}`)) out.set(k, v);
    } else out.set(`${prefix}/${name}`, fs.readFileSync(p).toString('hex'));
  }
  return out;
}

const sorted = (m: Map<string, string>) => [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1));

for (const type of ['efixbootldr', 'legacy+boot', 'hybrid']) {
  test(`build ${type}: the table as layout.json says, each filesystem as its sources`, () => {
    const { image, layout } = build(type);
    const disk = fileSource(image);
    open.push(disk);
    const t = readPartitionTable(disk)!;
    assert.equal(t.kind, layout.table);
    assert.deepEqual(t.warnings, []);
    if (layout.diskGuid) assert.equal(t.diskGuid, layout.diskGuid);
    const listed = layout.partitions.filter((p) => p.number !== null);
    assert.deepEqual(
      t.partitions.map((p) => ({ number: p.index, start: p.start, size: p.size, guid: p.guid, typeGuid: p.typeGuid, name: p.name ?? '', bootable: p.bootable, legacy: p.attributeNames.includes('LegacyBIOSBootable') })),
      listed.map((p) => ({
        number: p.number, start: p.start, size: p.size, guid: p.guid, typeGuid: p.typeGuid, name: layout.table === 'mbr' ? '' : p.name,
        bootable: p.bootable, legacy: p.legacyBiosBootable,
      })),
    );
    for (const p of listed) {
      if (!p.filesystem) continue;
      const vol = selectVolume(disk, p.number!);
      const fsr = openFilesystem(vol.source);
      const s = fsr.summary();
      assert.equal(s.label, p.filesystem.label);
      assert.equal(s.uuid.toLowerCase(), p.filesystem.uuid.toLowerCase());
      assert.equal(s.freeBlocks * s.blockSize, p.filesystem.freeBytes);
      if (p.role === 'root') {
        assert.ok(fsr instanceof Ext4Reader);
        assert.equal(s.freeInodes, p.filesystem.freeInodes);
        assert.deepEqual(diffSnapshots(snapshotTree(expectedRoot), snapshotReader(fsr), { labels: ['expected', 'image'] }), []);
      } else {
        assert.ok(fsr instanceof FatReader);
        assert.equal(`fat${fsr.info.type}`, `fat${p.filesystem.fatType}`);
        let want = hostFiles(path.join(work, 'esp'));
        if (p.role === 'xbootldr') want = new Map([['/EFI', 'dir'], ...[...hostFiles(path.join(work, 'xbootldr/nixos'), '/EFI/nixos')], ['/EFI/nixos', 'dir']]);
        assert.deepEqual(sorted(fatFiles(fsr)), sorted(want));
      }
    }
    // IMAGE:LABEL finds a partition by GPT name or filesystem label; IMAGE:N out of range is one line.
    assert.equal(selectVolume(disk, 'nixos').partition!.index, listed.find((p) => p.role === 'root')!.number);
    if (layout.table !== 'mbr') assert.equal(selectVolume(disk, 'ESP').partition!.index, 1);
    assert.throws(() => selectVolume(disk, 9), (e: DiskwrightError) => e.code === 'PARTITION_NOT_FOUND' && /^partition 9 not found; the image has partitions /.test(e.message));
    assert.throws(() => selectVolume(disk), (e: DiskwrightError) => e.code === 'PARTITION_NOT_FOUND' && /name one as IMAGE:N$/.test(e.message));
  });
}
