// Every make-disk-image layout, built from one config with contents that use
// modes and owners by name, checked with the real consumers: sgdisk -v and
// sfdisk --json for the tables, e2fsck and debugfs for the root filesystem,
// fsck.fat and mtools for the FAT partitions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { diskwright } from '../cli/run.ts';
import { dumpe2fs, e2fsck, requireRoot, requireTools, run } from '../oracle/tools.ts';
import { diffSnapshots, snapshotTree, snapshotViaDebugfs } from '../oracle/snapshot.ts';
import { CONTENTS, EPOCH, cut, makeBuildSources, stageExpectedRoot } from './fixture.ts';
import type { DiskLayout } from '../../src/api/build.ts';

const ROOT_GUID = 'F222513B-DED1-49FA-B591-20CE86A2FE7F';
const ESP = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const BIOS = '21686148-6449-6E6F-744E-656564454649';
const XBOOTLDR = 'BC13C2FF-59E6-4262-A352-B275FD6F7172';
const LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const P1 = '1C06F03B-704E-4657-B9CD-681A087A2FDC';
const P2 = '970C694F-AFD0-4B99-B750-CDB7A329AB6F';
const DISK = '97FD5997-F390-0B4A-A3F8-D106C1723AEA';

let work: string;
let expectedRoot: string;

before(() => {
  requireRoot('layout tests (chown in the expected tree, kernel-free checks)');
  requireTools('sgdisk', 'sfdisk', 'e2fsck', 'debugfs', 'fsck.fat', 'mcopy');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-layouts-'));
  makeBuildSources(work);
  expectedRoot = path.join(work, 'expected-root');
  stageExpectedRoot(work, expectedRoot);
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

interface Want { start: number; size?: number; type: string; uuid?: string; name?: string; attrs?: string; bootable?: boolean }

const MB = 2048; // sectors per MiB

function wanted(type: string, sectors: number): { label: string; id?: string; parts: Want[] } {
  const last = Math.floor((sectors - 33) / MB) * MB - 1; // parted's 100%: the last MiB boundary before the backup GPT
  switch (type) {
    case 'legacy':
      return { label: 'dos', parts: [{ start: MB, size: sectors - MB, type: '83' }] };
    case 'legacy+boot':
      return { label: 'dos', parts: [{ start: MB, size: 40 * MB - MB, type: 'c', bootable: true }, { start: 40 * MB, size: sectors - 40 * MB, type: '83' }] };
    case 'legacy+gpt':
      return { label: 'gpt', id: DISK, parts: [
        { start: MB, size: MB, type: BIOS, uuid: P1, name: 'no-fs' },
        { start: 2 * MB, size: last - 2 * MB + 1, type: LINUX, uuid: ROOT_GUID, name: 'primary' },
      ] };
    case 'efi':
      return { label: 'gpt', id: DISK, parts: [
        { start: 8 * MB, size: 32 * MB, type: ESP, uuid: P1, name: 'ESP', attrs: 'LegacyBIOSBootable' },
        { start: 40 * MB, size: last - 40 * MB + 1, type: LINUX, uuid: ROOT_GUID, name: 'primary' },
      ] };
    case 'efixbootldr':
      return { label: 'gpt', id: DISK, parts: [
        { start: 8 * MB, size: 92 * MB, type: ESP, uuid: P1, name: 'ESP', attrs: 'LegacyBIOSBootable' },
        { start: 100 * MB, size: 28 * MB, type: XBOOTLDR, uuid: P2, name: 'BOOT' },
        { start: 128 * MB, size: last - 128 * MB + 1, type: LINUX, uuid: ROOT_GUID, name: 'ROOT' },
      ] };
    case 'hybrid':
      return { label: 'gpt', id: DISK, parts: [
        { start: 8 * MB, size: 32 * MB, type: ESP, uuid: P1, name: 'ESP', attrs: 'LegacyBIOSBootable' },
        { start: 34, size: 2015, type: BIOS, uuid: P2, name: 'no-fs' },
        { start: 40 * MB, size: last - 40 * MB + 1, type: LINUX, uuid: ROOT_GUID, name: 'primary' },
      ] };
  }
  throw new Error(type);
}

function sfdiskJson(image: string, extra: string[] = []) {
  return JSON.parse(run('sfdisk', ['--json', ...extra, image]).stdout.toString()).partitiontable;
}

/** Every file under `dir` (relative path -> sha256), and every directory. */
function listing(dir: string, rel = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
    const p = path.join(rel, name);
    const st = fs.lstatSync(path.join(dir, p));
    if (st.isDirectory()) {
      out.set(`${p}/`, 'dir');
      for (const [k, v] of listing(dir, p)) out.set(k, v);
    } else out.set(p, createHash('sha256').update(fs.readFileSync(path.join(dir, p))).digest('hex'));
  }
  return out;
}

function checkFat(part: string, expectDir: string, label: string) {
  const f = run('fsck.fat', ['-n', part], { allowFailure: true });
  assert.equal(f.status, 0, `fsck.fat -n: ${f.stdout}${f.stderr}`);
  const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
  const lab = run('mlabel', ['-s', '-i', part, '::'], { env });
  assert.match(lab.stdout.toString(), new RegExp(`Volume label is ${label}\\b`));
  const out = fs.mkdtempSync(path.join(work, 'mcopy-'));
  const ls = run('mdir', ['-/', '-b', '-i', part, '::'], { env });
  if (ls.stdout.toString().trim() !== '') run('mcopy', ['-s', '-n', '-m', '-i', part, '::/*', out + '/'], { env });
  assert.deepEqual(listing(out), listing(expectDir));
}

const LAYOUTS = ['legacy', 'legacy+boot', 'legacy+gpt', 'efi', 'efixbootldr', 'hybrid', 'none'];

for (const type of LAYOUTS) {
  test(`${type}: table, root filesystem and FAT partitions check out with the real tools`, async () => {
    const hasEsp = ['legacy+boot', 'efi', 'efixbootldr', 'hybrid'].includes(type);
    const config = {
      partitionTableType: type,
      root: 'rootfs',
      contents: CONTENTS,
      additionalSpace: '8M',
      bootSize: type === 'efixbootldr' ? '128M' : '40M',
      epoch: EPOCH,
      ...(hasEsp ? { espContents: [{ source: 'esp/', target: '/' }] } : {}),
      ...(type === 'efixbootldr' ? { xbootldrContents: [{ source: 'xbootldr/nixos', target: '/EFI/nixos' }] } : {}),
    };
    const cfgFile = path.join(work, `${type}.json`);
    fs.writeFileSync(cfgFile, JSON.stringify(config));
    const out = path.join(work, `out-${type}`);
    const r = diskwright(['build', cfgFile, '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    const image = path.join(out, 'nixos.img');
    const layout: DiskLayout = JSON.parse(fs.readFileSync(path.join(out, 'layout.json'), 'utf8'));
    assert.equal(fs.readFileSync(path.join(out, 'nix-support/hydra-build-products'), 'utf8'), `file raw-image ${image}\n`);
    const size = fs.statSync(image).size;
    assert.equal(size % 2 ** 20, 0, 'whole MiB');
    assert.equal(layout.size, size);
    // The printed layout names every partition's start and size and each filesystem's free space.
    assert.match(r.stderr, /free/);

    if (type !== 'none') {
      const want = wanted(type, size / 512);
      const pt = sfdiskJson(image);
      assert.equal(pt.label, want.label);
      if (want.id) assert.equal(pt.id.toUpperCase(), want.id);
      assert.equal(pt.partitions.length, want.parts.length);
      want.parts.forEach((w, i) => {
        const p = pt.partitions[i];
        assert.equal(p.start, w.start, `partition ${i + 1} start`);
        assert.equal(p.size, w.size, `partition ${i + 1} size`);
        assert.equal(String(p.type).toUpperCase(), w.type.toUpperCase(), `partition ${i + 1} type`);
        if (w.uuid) assert.equal(p.uuid.toUpperCase(), w.uuid);
        if (w.name) assert.equal(p.name, w.name);
        assert.equal(p.attrs, w.attrs, `partition ${i + 1} attrs`);
        assert.equal(p.bootable ?? false, w.bootable ?? false, `partition ${i + 1} bootable`);
      });
      if (want.label === 'gpt') {
        const v = run('sgdisk', ['-v', image], { allowFailure: true });
        assert.equal(v.status, 0, v.stdout.toString() + v.stderr);
        assert.match(v.stdout.toString(), /No problems found/);
      }
      if (type === 'hybrid') {
        // The MBR under the GPT lists what BIOS needs: the GPT guard, the ESP and a bootable root.
        const mbr = sfdiskJson(image, ['--label-nested', 'dos']);
        assert.equal(mbr.label, 'dos');
        const types = mbr.partitions.map((p: { type: string }) => p.type);
        assert.deepEqual(types, ['ee', 'ef', '83']);
        const root = mbr.partitions[2];
        assert.equal(root.start, 40 * MB);
        assert.equal(root.bootable, true);
        assert.equal(mbr.partitions[1].start, 8 * MB);
      }
    }

    // The root filesystem, cut out: e2fsck-clean and equal to the expected tree.
    const rootPart = layout.partitions.find((p) => p.role === 'root')!;
    const rootImg = path.join(work, `${type}-root.img`);
    cut(image, rootPart.start, rootPart.size, rootImg);
    const fsck = e2fsck(rootImg);
    assert.equal(fsck.status, 0, fsck.output);
    const diff = diffSnapshots(snapshotTree(expectedRoot), await snapshotViaDebugfs(rootImg), { labels: ['expected', 'image'] });
    assert.deepEqual(diff, []);
    assert.equal(rootPart.filesystem?.label, 'nixos');
    assert.equal(rootPart.filesystem?.uuid.toUpperCase(), ROOT_GUID);
    // auto size: at least additionalSpace free, and less than one MiB more than needed beyond it.
    // The free space and free inodes printed and in layout.json are the filesystem's own, per dumpe2fs;
    // additionalSpace comes with one free inode per 16 KiB of it.
    const d = dumpe2fs(rootImg);
    assert.equal(Number(d['Free blocks']) * 4096, rootPart.filesystem!.freeBytes);
    assert.equal(Number(d['Free inodes']), rootPart.filesystem!.freeInodes);
    assert.ok(rootPart.filesystem!.freeBytes >= 8 * 2 ** 20);
    assert.ok(rootPart.filesystem!.freeInodes! >= (8 * 2 ** 20) / 16384);

    for (const p of layout.partitions.filter((q) => q.filesystem?.type === 'vfat')) {
      const part = path.join(work, `${type}-${p.role}.img`);
      cut(image, p.start, p.size, part);
      const expectDir = p.role === 'xbootldr' ? fs.mkdtempSync(path.join(work, 'xb-')) : path.join(work, 'esp');
      if (p.role === 'xbootldr') {
        fs.mkdirSync(path.join(expectDir, 'EFI'));
        fs.cpSync(path.join(work, 'xbootldr/nixos'), path.join(expectDir, 'EFI/nixos'), { recursive: true });
      }
      checkFat(part, expectDir, p.filesystem!.label);
      assert.equal(p.filesystem!.fatType, p.size >= 39 * 2 ** 20 ? 32 : 16);
    }
    fs.rmSync(out, { recursive: true });
  });
}
