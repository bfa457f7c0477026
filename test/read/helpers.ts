// Shared by the reader tests: a Snapshot (test/oracle/snapshot.ts) built from
// a filesystem reader's walk, so reader output compares with snapshotTree()
// of the source directory through diffSnapshots().
import assert from 'node:assert/strict';
import { canonicalAcl, ContentDigest, type SnapEntry, type Snapshot } from '../oracle/snapshot.ts';
import { dumpe2fs } from '../oracle/tools.ts';
import type { FsEntry, FsReader } from '../../src/read/entry.ts';
import type { Ext4Reader } from '../../src/read/ext4.ts';

/** A content digest through the reader's hole-aware chunks. */
export function readerDigest(r: FsReader, e: FsEntry): string {
  const d = new ContentDigest();
  let pos = 0;
  for (const c of r.chunks(e, { chunkSize: 4 << 20 })) {
    d.zeros(BigInt(c.offset - pos));
    d.update(c.data);
    pos = c.offset + c.data.length;
  }
  d.zeros(BigInt(e.size - pos));
  return d.digest();
}

const ACL = new Set(['system.posix_acl_access', 'system.posix_acl_default']);

/** The reader's tree as a Snapshot; root-level names in `exclude` (default lost+found) left out. */
export function snapshotReader(r: FsReader, opts: { exclude?: string[]; content?: boolean } = {}): Snapshot {
  const exclude = new Set(opts.exclude ?? ['lost+found']);
  const out: Snapshot = new Map();
  const groups = new Map<string, string[]>();
  const skip = (e: FsEntry) => {
    const top = e.path.split('/')[1];
    return top !== undefined && exclude.has(Buffer.from(top, 'latin1').toString('utf8'));
  };
  for (const e of r.walk()) {
    if (e.path !== '/' && skip(e)) continue;
    const s: SnapEntry = {
      type: e.type,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      mtimeNs: BigInt(e.mtimeSec) * 1_000_000_000n + BigInt(e.mtimeNsec),
      xattrs: e.xattrs
        .map((x): [string, string] => [x.name, (ACL.has(x.name) ? canonicalAcl(x.value) : x.value).toString('hex')])
        .sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0]))),
    };
    if (e.type === 'file') {
      s.size = BigInt(e.size);
      if (opts.content !== false) s.digest = readerDigest(r, e);
    } else if (e.type === 'symlink') {
      s.size = BigInt(e.size);
      s.target = e.target!.toString('latin1');
    } else if (e.type === 'chr' || e.type === 'blk') {
      s.major = e.major;
      s.minor = e.minor;
    }
    out.set(e.path, s);
    if (e.linkKey) {
      const g = groups.get(e.linkKey) ?? [];
      g.push(e.path);
      groups.set(e.linkKey, g);
    }
  }
  for (const g of groups.values()) {
    if (g.length < 2) continue;
    g.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const k of g) out.get(k)!.links = g;
  }
  return new Map([...out].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

// ---------------------------------------------------------------- dumpe2fs

/** asctime() in UTC, as dumpe2fs prints times under TZ=UTC. */
export function asctime(sec: number): string {
  const d = new Date(sec * 1000);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()];
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${day} ${mon} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** Every superblock and journal figure `dumpe2fs -h` prints that the reader has, compared. */
export function assertMatchesDumpe2fs(r: Ext4Reader, image: string): void {
  const d = dumpe2fs(image);
  const i = r.info;
  const want: Record<string, string> = {
    'Filesystem volume name': i.label === '' ? '<none>' : i.label,
    'Filesystem UUID': i.uuid,
    'Filesystem features': i.features.names.join(' '),
    'Filesystem flags': i.flags.join(' '),
    'Inode count': String(i.inodesCount),
    'Block count': String(i.blocksCount),
    'Reserved block count': String(i.reservedBlocks),
    'Free blocks': String(i.freeBlocks),
    'Free inodes': String(i.freeInodes),
    'First block': String(i.firstDataBlock),
    'Block size': String(i.blockSize),
    'Blocks per group': String(i.blocksPerGroup),
    'Inodes per group': String(i.inodesPerGroup),
    'Inode blocks per group': String(Math.ceil((i.inodesPerGroup * i.inodeSize) / i.blockSize)),
    'Inode size': String(i.inodeSize),
    'First inode': String(i.firstIno),
    'Maximum mount count': String(i.maxMountCount),
    'Mount count': String(i.mountCount),
    'Filesystem created': asctime(i.times.mkfs),
    'Last write time': asctime(i.times.write),
    'Filesystem revision #': `${i.revLevel} (${i.revLevel === 0 ? 'original' : 'dynamic'})`,
  };
  if (i.reservedGdtBlocks) want['Reserved GDT blocks'] = String(i.reservedGdtBlocks);
  if (i.features.incompat & 0x80) want['Group descriptor size'] = String(i.descSize);
  if (i.features.incompat & 0x200) want['Flex block group size'] = String(2 ** i.logGroupsPerFlex);
  if (i.overheadClusters) want['Overhead clusters'] = String(i.overheadClusters);
  if (i.revLevel > 0 && i.inodeSize > 128) {
    want['Required extra isize'] = String(i.minExtraIsize);
    want['Desired extra isize'] = String(i.wantExtraIsize);
  }
  if (i.features.compat & 0x20) {
    want['Default directory hash'] = i.defaultHash;
    want['Directory Hash Seed'] = i.hashSeed;
  }
  if (i.checksum) {
    want['Checksum'] = `0x${i.checksum.stored.toString(16).padStart(8, '0')}`;
    assert.ok(i.checksum.valid, 'superblock checksum');
  }
  const j = r.journal();
  if (i.journalInum) {
    want['Journal inode'] = String(i.journalInum);
    assert.ok(j);
    want['Total journal blocks'] = String(j.maxLen);
    want['Journal sequence'] = `0x${j.sequence.toString(16).padStart(8, '0')}`;
    want['Journal start'] = String(j.start);
    if (j.featureCompat === 0 && j.featureIncompat === 0 && j.featureRoCompat === 0) want['Journal features'] = '(none)';
  } else {
    assert.equal(j, null);
  }
  const got: Record<string, string> = {};
  for (const k of Object.keys(want)) got[k] = d[k] ?? '(absent)';
  assert.deepEqual(want, got);
  // And the group totals agree with the superblock on a cleanly made filesystem.
  assert.equal(i.groupTotals.freeBlocks, i.freeBlocks, 'free blocks: groups vs superblock');
  assert.equal(i.groupTotals.freeInodes, i.freeInodes, 'free inodes: groups vs superblock');
}

/** The allocation map has no overlaps and covers exactly the blocks the filesystem counts as used. */
export function assertAllocationExact(r: FsReader): void {
  const a = r.allocation();
  let end = 0;
  let total = 0;
  for (const x of a) {
    assert.ok(x.offset >= end, `overlap at ${x.offset} (${x.what} ${x.path ?? ''})`);
    end = x.offset + x.length;
    total += x.length;
  }
  const s = r.summary();
  assert.ok(end <= s.blocks * s.blockSize, 'inside the filesystem');
  assert.equal(total / s.blockSize, s.blocks - s.freeBlocks, 'allocated blocks explained');
}
