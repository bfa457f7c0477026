// ext4 as a filesystem driver: how to recognise it, plan it from a tree,
// read it, and describe what only ext4 has. Registered in src/fs/drivers.ts.
import type { FsDriver } from '../drivers.ts';
import { Ext4Reader } from '../../read/ext4.ts';
import { hasExtMagic } from './superblock.ts';
import type { FsReader } from '../../read/entry.ts';
import { ext4AutoBytes, planExt4, prepareExt4, type Ext4Tree } from './planner.ts';
import { formatUuid } from '../../util/ids.ts';
import type { Ext4Content } from '../../disk/spec.ts';

export interface InspectExt4 {
  hashSeed: string;
  defaultHash: string;
  flags: string[];
  inodeSize: number;
  reservedBlocks: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  groups: number;
  revision: number;
  state: string;
  mountCount: number;
  maxMountCount: number;
  lastMounted: string;
  /** ISO 8601 UTC, null for never. */
  created: string | null;
  lastWrite: string | null;
  lastMount: string | null;
  lastCheck: string | null;
  journal: null | { inode: number; blocks: number; blockSize: number; sequence: number; uuid: string };
}

const STATES: Record<number, string> = { 1: 'clean', 2: 'not clean (errors)', 3: 'clean with errors' };
const iso = (sec: number) => (sec === 0 ? null : new Date(sec * 1000).toISOString().replace('.000Z', 'Z'));
/** The smallest ext4 diskwright makes (mke2fs refuses less too). */
const EXT4_MIN = 64 * 1024;

/**
 * Each partition's tree prepared once: need() sizes the filesystem from it
 * and plan() places it at the partition's size, which is the last use.
 */
const preparedTrees = new WeakMap<Ext4Content, Ext4Tree>();
function prepared(c: Ext4Content): Ext4Tree {
  let t = preparedTrees.get(c);
  if (!t) preparedTrees.set(c, (t = prepareExt4(c.tree, c.options)));
  return t;
}

export const ext4Driver: FsDriver<Ext4Content, { ext4: InspectExt4 }> = {
  name: 'ext4',
  title: 'ext2/3/4',
  // The superblock ends at 2048: mke2fs makes nothing smaller.
  minSize: 2048,
  magic: hasExtMagic,
  open: (src) => new Ext4Reader(src),
  owns: (reader: FsReader) => reader instanceof Ext4Reader,
  need: (c) => Math.max(EXT4_MIN, ext4AutoBytes(prepared(c), { ...c.options, freeBytes: c.freeBytes ?? 0 })),
  // ext4 counts in 4 KiB blocks: it fills the partition to the last whole block.
  fits: (size) => Math.floor(size / 4096) * 4096 >= EXT4_MIN,
  plan(c, size) {
    const tree = prepared(c);
    preparedTrees.delete(c);
    const { image, stats: s } = planExt4(tree, { ...c.options, size: Math.floor(size / 4096) * 4096, freeBytes: c.freeBytes ?? 0, inodeRatio: c.inodeRatio });
    return { image, report: { type: 'ext4', label: s.label, uuid: formatUuid(s.uuid), bytes: s.bytes, freeBytes: s.freeBlocks * s.blockSize, freeInodes: s.freeInodes, usedInodes: s.usedInodes } };
  },
  describe(reader) {
    const r = reader as Ext4Reader;
    const i = r.info;
    // inspect refuses the same damage that cat and extract meet (a size no mapping can address).
    r.checkInodes();
    const j = r.journal();
    return {
      ext4: {
        hashSeed: i.hashSeed,
        defaultHash: i.defaultHash,
        flags: i.flags,
        inodeSize: i.inodeSize,
        reservedBlocks: i.reservedBlocks,
        blocksPerGroup: i.blocksPerGroup,
        inodesPerGroup: i.inodesPerGroup,
        groups: i.groups,
        revision: i.revLevel,
        state: STATES[i.state] ?? `not clean (${i.state})`,
        mountCount: i.mountCount,
        maxMountCount: i.maxMountCount,
        lastMounted: i.lastMounted,
        created: iso(i.times.mkfs),
        lastWrite: iso(i.times.write),
        lastMount: iso(i.times.mount),
        lastCheck: iso(i.times.lastCheck),
        journal: j ? { inode: i.journalInum, blocks: j.maxLen, blockSize: j.blockSize, sequence: j.sequence, uuid: j.uuid } : null,
      },
    };
  },
  rootAttributes: true,
  identity: 'inode',
  records(reader, range) {
    const m = /^inode table \(group (\d+)\)$/.exec(range.what);
    if (!m) return undefined;
    const i = (reader as Ext4Reader).info;
    return { kind: 'inodes', first: Number(m[1]) * i.inodesPerGroup + 1, size: i.inodeSize };
  },
};
