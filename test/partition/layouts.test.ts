// The make-disk-image layouts, written as sparse images and read back by the
// real tools: sgdisk -v, sfdisk --verify / --json, parted -m, gdisk. Also:
// our GPT bytes equal what make-disk-image's own parted + sgdisk recipe
// writes, and our hybrid MBR equals the one gdisk builds interactively.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAt, requireTools, run } from '../oracle/tools.ts';
import { writeImageFile } from '../../src/format/raw.ts';
import { composeDisk } from '../../src/image/compose.ts';
import { MAKE_DISK_IMAGE_DISK_GUID, MAKE_DISK_IMAGE_PART1_GUID, MAKE_DISK_IMAGE_PART2_GUID } from '../../src/partition/guid.ts';
import { encodeTable, GPT_FOOTER_BYTES, GPT_HEADER_BYTES, resolveIds, type PartitionSpec, type TableSpec } from '../../src/partition/table.ts';
import { GPT_TYPE, MBR_TYPE, mbrTypeForGpt, rootTypeGuid } from '../../src/partition/types.ts';

requireTools('sgdisk', 'sfdisk', 'parted', 'gdisk');

const M = 2 ** 20;
const D = 300 * M; // disk
const B = 256 * M; // bootSize: where the boot partition ends
const S = D / 512;
const USABLE_END = D - GPT_FOOTER_BYTES; // first byte of the backup GPT
const ROOT_GUID = 'F222513B-DED1-49FA-B591-20CE86A2FE7F'; // make-disk-image's default rootGPUID
const dir = mkdtempSync(join(tmpdir(), 'diskwright-layouts-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Sizes as make-disk-image means them (MiB); GPT GUIDs as its deterministic mode sets them.
const LAYOUTS: Record<string, TableSpec> = {
  legacy: {
    kind: 'mbr',
    diskSize: D,
    diskSignature: 0x1b2c3d4e,
    partitions: [{ name: 'primary', start: M, size: D - M, mbrType: MBR_TYPE.linux }],
  },
  'legacy+boot': {
    kind: 'mbr',
    diskSize: D,
    diskSignature: 0x00c0ffee,
    partitions: [
      { name: 'boot', start: M, size: B - M, mbrType: MBR_TYPE.fat32Lba, bootable: true },
      { name: 'primary', start: B, size: D - B, mbrType: MBR_TYPE.linux },
    ],
  },
  'legacy+gpt': {
    kind: 'gpt',
    diskSize: D,
    diskGuid: MAKE_DISK_IMAGE_DISK_GUID,
    partitions: [
      { name: 'no-fs', start: M, size: M, typeGuid: GPT_TYPE.biosBoot, guid: MAKE_DISK_IMAGE_PART1_GUID },
      { name: 'primary', start: 2 * M, size: USABLE_END - 2 * M, typeGuid: GPT_TYPE.linuxData, guid: MAKE_DISK_IMAGE_PART2_GUID, legacyBiosBootable: true },
    ],
  },
  efi: {
    kind: 'gpt',
    diskSize: D,
    diskGuid: MAKE_DISK_IMAGE_DISK_GUID,
    partitions: [
      { name: 'ESP', start: 8 * M, size: B - 8 * M, typeGuid: GPT_TYPE.esp, guid: MAKE_DISK_IMAGE_PART1_GUID },
      { name: 'primary', start: B, size: USABLE_END - B, typeGuid: GPT_TYPE.linuxData, guid: ROOT_GUID },
    ],
  },
  efixbootldr: {
    kind: 'gpt',
    diskSize: D,
    diskGuid: MAKE_DISK_IMAGE_DISK_GUID,
    partitions: [
      { name: 'ESP', start: 8 * M, size: 92 * M, typeGuid: GPT_TYPE.esp, guid: MAKE_DISK_IMAGE_PART1_GUID },
      { name: 'BOOT', start: 100 * M, size: B - 100 * M, typeGuid: GPT_TYPE.xbootldr, guid: MAKE_DISK_IMAGE_PART2_GUID },
      { name: 'ROOT', start: B, size: USABLE_END - B, typeGuid: rootTypeGuid('x86_64-linux'), guid: ROOT_GUID },
    ],
  },
  hybrid: {
    kind: 'hybrid',
    diskSize: D,
    diskGuid: MAKE_DISK_IMAGE_DISK_GUID,
    partitions: [
      { name: 'ESP', start: 8 * M, size: B - 8 * M, typeGuid: GPT_TYPE.esp, guid: MAKE_DISK_IMAGE_PART1_GUID, legacyBiosBootable: true },
      { name: 'no-fs', start: 34 * 512, size: M - 34 * 512, typeGuid: GPT_TYPE.biosBoot, guid: MAKE_DISK_IMAGE_PART2_GUID },
      { name: 'primary', start: B, size: USABLE_END - B, typeGuid: GPT_TYPE.linuxData, guid: ROOT_GUID, bootable: true },
    ],
    // What BIOS needs: the ESP (0xEF) and the root, marked active, behind 0xEE.
    hybridMbr: [0, 2],
  },
};


function blank(name: string): string {
  const p = join(dir, name);
  writeFileSync(p, '');
  truncateSync(p, D);
  return p;
}

function write(name: string, spec: TableSpec): string {
  const p = join(dir, name);
  writeImageFile(composeDisk(spec.diskSize, [], encodeTable(spec)), p);
  return p;
}

const text = (tool: string, args: string[]) => run(tool, args).stdout.toString();
const sfdiskJson = (args: string[]) => JSON.parse(text('sfdisk', ['--json', ...args])).partitiontable;

/** sfdisk --json as it should read our spec (device and node names left out). */
function expectedSfdisk(spec: TableSpec): unknown {
  const ids = resolveIds(spec);
  if (spec.kind === 'mbr') {
    return {
      label: 'dos',
      id: `0x${ids.diskSignature!.toString(16).padStart(8, '0')}`,
      unit: 'sectors',
      sectorsize: 512,
      partitions: spec.partitions.map((p) => ({
        start: p.start / 512,
        size: p.size / 512,
        type: (p.mbrType ?? MBR_TYPE.linux).toString(16),
        ...(p.bootable ? { bootable: true } : {}),
      })),
    };
  }
  const attrs = (p: PartitionSpec) => [p.required && 'RequiredPartition', p.legacyBiosBootable && 'LegacyBIOSBootable'].filter(Boolean).join(' ');
  return {
    label: 'gpt',
    id: ids.diskGuid,
    unit: 'sectors',
    firstlba: 34,
    lastlba: S - 34,
    sectorsize: 512,
    partitions: spec.partitions.map((p, i) => ({
      start: p.start / 512,
      size: p.size / 512,
      type: p.typeGuid ?? GPT_TYPE.linuxData,
      uuid: ids.partitionGuids[i],
      name: p.name,
      ...(attrs(p) ? { attrs: attrs(p) } : {}),
    })),
  };
}

function withoutNames(t: { device?: string; partitions: { node?: string }[] }): unknown {
  const { device: _d, ...rest } = t;
  return { ...rest, partitions: t.partitions.map(({ node: _n, ...p }) => p) };
}

/** parted's flags for a partition, from what parted 3.5 derives from types and attributes. */
function expectedPartedFlags(spec: TableSpec, p: PartitionSpec): string[] {
  const f: string[] = [];
  if (spec.kind === 'mbr') {
    if (p.bootable) f.push('boot');
    if (p.mbrType === MBR_TYPE.fat32Lba) f.push('lba');
    return f;
  }
  if (p.typeGuid === GPT_TYPE.esp) f.push('boot', 'esp');
  if (p.typeGuid === GPT_TYPE.biosBoot) f.push('bios_grub');
  if (p.typeGuid === GPT_TYPE.xbootldr) f.push('bls_boot');
  if (p.legacyBiosBootable) f.push('legacy_boot');
  return f.sort();
}

for (const [name, spec] of Object.entries(LAYOUTS)) {
  test(`${name}: sgdisk, sfdisk and parted read the table we wrote`, () => {
    const img = write(`${name}.img`, spec);

    // sgdisk -v. On an MBR disk it converts to GPT in memory first, and its one
    // complaint is that a GPT's backup would need the last 33 sectors, which
    // make-disk-image's MBR layouts give to the last partition.
    const v = text('sgdisk', ['-v', img]);
    if (spec.kind === 'mbr') {
      assert.match(v, /Found invalid GPT and valid MBR; converting MBR to GPT format/);
      assert.match(v, /Secondary partition table overlaps the last partition by\s+33 blocks/);
      assert.match(v, /Identified 1 problems!/);
    } else {
      assert.match(v, /No problems found/);
      assert.doesNotMatch(v, /[Ww]arning|problem\(s\)|Identified/);
    }
    assert.match(text('sfdisk', ['--verify', img]), /No errors detected/);

    assert.deepEqual(withoutNames(sfdiskJson([img])), expectedSfdisk(spec));

    if (spec.kind === 'hybrid') {
      // The MBR side, as BIOS sees it: 0xEE up to the first mirrored partition, then the mirrors.
      const mirrored = spec.hybridMbr!.map((i) => spec.partitions[i]);
      const first = Math.min(...mirrored.map((p) => p.start / 512));
      assert.deepEqual(withoutNames(sfdiskJson(['--label-nested', 'dos', img])), {
        label: 'dos',
        id: '0x00000000',
        unit: 'sectors',
        sectorsize: 512,
        partitions: [
          { start: 1, size: first - 1, type: 'ee' },
          ...mirrored.map((p) => ({
            start: p.start / 512,
            size: p.size / 512,
            type: (p.mbrType ?? mbrTypeForGpt(p.typeGuid!)!).toString(16),
            ...(p.bootable ? { bootable: true } : {}),
          })),
        ],
      });
      assert.match(text('gdisk', ['-l', img]), /MBR: hybrid/);
      assert.match(text('fdisk', ['-l', '-t', 'dos', img]), /\*\s+524288\s+614366\s+90079\s+44M\s+83 Linux/);
    }

    // parted -m: "number:start:end:size:fs:name:flags;" in sectors.
    const lines = text('parted', ['-m', '-s', img, 'unit', 's', 'print']).trim().split('\n');
    assert.equal(lines[0], 'BYT;');
    assert.equal(lines[1], `${img}:${S}s:file:512:512:${spec.kind === 'mbr' ? 'msdos' : 'gpt'}::;`);
    const parted = new Map(lines.slice(2).map((l) => [Number(l.split(':')[0]), l.replace(/;$/, '').split(':')]));
    assert.equal(parted.size, spec.partitions.length);
    spec.partitions.forEach((p, i) => {
      const [, start, end, size, , pname, flags] = parted.get(i + 1)!;
      assert.deepEqual([start, end, size], [`${p.start / 512}s`, `${(p.start + p.size) / 512 - 1}s`, `${p.size / 512}s`], `parted partition ${i + 1}`);
      assert.equal(pname, spec.kind === 'mbr' ? '' : p.name);
      assert.deepEqual(flags.split(', ').filter(Boolean).sort(), expectedPartedFlags(spec, p), `parted flags of partition ${i + 1}`);
    });
  });
}

test('the same spec writes the same image', () => {
  for (const [name, spec] of Object.entries(LAYOUTS)) {
    const a = write(`${name}-a.img`, spec);
    const b = write(`${name}-b.img`, spec);
    for (const [off, len] of [[0, GPT_HEADER_BYTES], [D - GPT_FOOTER_BYTES, GPT_FOOTER_BYTES]]) {
      assert.deepEqual(readAt(a, off, len), readAt(b, off, len), `${name} at ${off}`);
    }
  }
});

// make-disk-image's own recipes (nixos/lib/make-disk-image.nix, deterministic mode).
// parted 3.5 places the partitions; sgdisk then sets the GUIDs and rewrites the GPT.
const RECIPES: Record<string, { parted: string[]; guids: string[]; types: string[]; names: string[]; sectors: [number, number][] }> = {
  'legacy+gpt': {
    parted: ['mklabel', 'gpt', 'mkpart', 'no-fs', '1MB', '2MB', 'set', '1', 'bios_grub', 'on', 'mkpart', 'primary', 'ext4', '2MB', '-1'],
    guids: [MAKE_DISK_IMAGE_PART1_GUID, MAKE_DISK_IMAGE_PART2_GUID],
    types: [GPT_TYPE.biosBoot, GPT_TYPE.linuxData],
    names: ['no-fs', 'primary'],
    // "-1" is 1 MB before the end (parted's default unit), then aligned down to a MiB.
    sectors: [[2048, 4095], [4096, 612351]],
  },
  efi: {
    parted: ['mklabel', 'gpt', 'mkpart', 'ESP', 'fat32', '8MiB', '256MiB', 'set', '1', 'boot', 'on', 'mkpart', 'primary', 'ext4', '256MiB', '-1'],
    guids: [MAKE_DISK_IMAGE_PART1_GUID, ROOT_GUID],
    types: [GPT_TYPE.esp, GPT_TYPE.linuxData],
    names: ['ESP', 'primary'],
    sectors: [[16384, 524287], [524288, 612351]],
  },
  efixbootldr: {
    parted: ['mklabel', 'gpt', 'mkpart', 'ESP', 'fat32', '8MiB', '100MiB', 'set', '1', 'boot', 'on', 'mkpart', 'BOOT', 'fat32', '100MiB', '256MiB', 'set', '2', 'bls_boot', 'on', 'mkpart', 'ROOT', 'ext4', '256MiB', '-1'],
    guids: [MAKE_DISK_IMAGE_PART1_GUID, MAKE_DISK_IMAGE_PART2_GUID, ROOT_GUID],
    types: [GPT_TYPE.esp, GPT_TYPE.xbootldr, GPT_TYPE.linuxData],
    names: ['ESP', 'BOOT', 'ROOT'],
    sectors: [[16384, 204799], [204800, 524287], [524288, 612351]],
  },
  hybrid: {
    parted: ['mklabel', 'gpt', 'mkpart', 'ESP', 'fat32', '8MiB', '256MiB', 'set', '1', 'boot', 'on', 'mkpart', 'no-fs', '0', '1024KiB', 'set', '2', 'bios_grub', 'on', 'mkpart', 'primary', 'ext4', '256MiB', '-1'],
    guids: [MAKE_DISK_IMAGE_PART1_GUID, MAKE_DISK_IMAGE_PART2_GUID, ROOT_GUID],
    types: [GPT_TYPE.esp, GPT_TYPE.biosBoot, GPT_TYPE.linuxData],
    names: ['ESP', 'no-fs', 'primary'],
    // parted 3.5 ends `0 1024KiB` at sector 2048 inclusive (2015 sectors).
    sectors: [[16384, 524287], [34, 2048], [524288, 612351]],
  },
};

for (const [name, r] of Object.entries(RECIPES)) {
  test(`${name}: our GPT equals make-disk-image's parted + sgdisk result, byte for byte`, () => {
    const img = blank(`recipe-${name}.img`);
    run('parted', ['--script', img, '--', ...r.parted]);
    run('sgdisk', ['--disk-guid=97FD5997-D90B-4AA3-8D16-C1723AEA73C', ...r.guids.map((g, i) => `--partition-guid=${i + 1}:${g}`), img]);
    const got = sfdiskJson([img]).partitions as { start: number; size: number }[];
    assert.deepEqual(got.map((p) => [p.start, p.start + p.size - 1]), r.sectors, 'parted placed the partitions as recorded');

    // make-disk-image's "hybrid" is a plain GPT with a protective MBR; compare the GPT.
    const spec: TableSpec = {
      kind: 'gpt',
      diskSize: D,
      diskGuid: MAKE_DISK_IMAGE_DISK_GUID,
      partitions: r.sectors.map(([a, b], i) => ({ name: r.names[i], start: a * 512, size: (b - a + 1) * 512, typeGuid: r.types[i], guid: r.guids[i] })),
    };
    const ours = write(`recipe-${name}-ours.img`, spec);
    assert.ok(readAt(ours, 512, GPT_HEADER_BYTES - 512).equals(readAt(img, 512, GPT_HEADER_BYTES - 512)), 'primary header and entries');
    assert.ok(readAt(ours, D - GPT_FOOTER_BYTES, GPT_FOOTER_BYTES).equals(readAt(img, D - GPT_FOOTER_BYTES, GPT_FOOTER_BYTES)), 'backup entries and header');
  });
}

test('hybrid: our MBR equals the one gdisk builds (0xEE first, ESP 0xEF, root 0x83 active)', () => {
  const spec = LAYOUTS.hybrid;
  const ours = write('hybrid-ours.img', spec);
  // The same disk as a plain GPT, hybridised by gdisk's recovery menu.
  const img = write('hybrid-gdisk.img', { ...spec, kind: 'gpt', hybridMbr: undefined, partitions: spec.partitions.map(({ bootable: _b, ...p }) => p) });
  const answers = [
    'r', 'h', '1 3', // recovery menu, hybrid MBR from GPT partitions 1 and 3
    'Y', // 0xEE first
    'EF', 'N', // ESP: type, not active
    '83', 'Y', // root: type, active
    'N', // do not protect more space with the free slot
    'w', 'Y',
  ];
  run('gdisk', [img], { input: answers.join('\n') + '\n' });
  assert.equal(readAt(ours, 0, 512).toString('hex'), readAt(img, 0, 512).toString('hex'));
  assert.ok(readAt(ours, 512, GPT_HEADER_BYTES - 512).equals(readAt(img, 512, GPT_HEADER_BYTES - 512)), 'GPT untouched');
  assert.match(text('sgdisk', ['-v', img]), /No problems found/);
});
