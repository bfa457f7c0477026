// The size-independent half of planning: inode numbers, directory layouts,
// symlink kinds, xattr placement and each inode's block needs. Nothing here
// depends on the filesystem size, so the sizer can try sizes cheaply.
import { DiskwrightError } from '../../errors.ts';
import { byteName, ID_MAX, type DirEntry, type Entry } from '../../tree/model.ts';
import {
  BLOCK_SIZE, FIRST_INO, FT_BLK, FT_CHR, FT_DIR, FT_FIFO, FT_REG, FT_SOCK, FT_SYMLINK, LOST_FOUND_INO, MAX_LINKS, ROOT_INO,
} from './constants.ts';
import { type DirList, dirList, packBlocks, withDots } from './dir-entry.ts';
import { type HtreePlan, planHtree } from './htree.ts';
import { type DiskXattr, splitXattrs, toDiskXattr, xattrKey } from './xattr.ts';

/** A directory's blocks: one or more linear leaves, or an htree. */
export interface DirLayout {
  linear?: { items: DirList; starts: number[] };
  htree?: HtreePlan;
}

/**
 * Kept from planning until the image is written (inode and directory blocks
 * are made then), so per inode it is a few typed-array slots, not an object:
 * arrays indexed by inode number, holes (entry undefined) for reserved inodes.
 */
export interface Prepared {
  entries: Entry[];
  parent: Uint32Array;
  links: Uint32Array;
  /** Content blocks: file data, directory blocks, a slow symlink's block. */
  blocks: Float64Array;
  /** Index into xattrBlocks, or -1. */
  xblock: Int32Array;
  /** Attributes stored in the inode body, for the inodes that have some. */
  inInode: Map<number, DiskXattr[]>;
  /** Sparse files' data as logical block runs (holes between them); any other inode's blocks are [0, blocks). */
  runs: Map<number, Array<{ logical: number; length: number }>>;
  dirLayouts: Map<number, DirLayout>;
  maxIno: number;
  xattrBlocks: Array<{ attrs: DiskXattr[]; refs: number }>;
  dirs: number;
  /** Blocks every inode together needs (content + xattr blocks), before extent-tree blocks. */
  contentBlocks: number;
}

/** A symlink whose target fits in i_block (never one of 60 bytes: the kernel takes that as a slow one). */
export const isFastSymlink = (target: Buffer) => target.length < 60;

/** Names in the tree below `dir`: a bound on the inodes it needs. */
function countNames(dir: DirEntry): number {
  let n = dir.children.size;
  for (const e of dir.children.values()) if (e.type === 'dir') n += countNames(e);
  return n;
}

const LOST_FOUND_BLOCKS = 4; // 16 KiB, as mke2fs makes it, so e2fsck can reconnect files without allocating
const LOST_FOUND = byteName('lost+found');

const FILE_TYPE: Record<Entry['type'], number> = {
  file: FT_REG, dir: FT_DIR, symlink: FT_SYMLINK, chr: FT_CHR, blk: FT_BLK, fifo: FT_FIFO, sock: FT_SOCK,
};

const validId = (id: number) => Number.isInteger(id) && id >= 0 && id <= ID_MAX;

export function prepare(root: DirEntry, opts: { inodeSize: number; hashSeed: Uint32Array; epoch: number }): Prepared {
  const links = new Map<string, number>();
  const xblocks = new Map<string, number>();
  const xattrBlocks: Prepared['xattrBlocks'] = [];
  let next = FIRST_INO + 1;
  let dirs = 0;

  // lost+found: the source's own if it has one, else a fresh one; always inode 11.
  const lfSource = root.children.get(LOST_FOUND);
  const lostFound: DirEntry = lfSource?.type === 'dir'
    ? lfSource
    : { type: 'dir', mode: 0o700, uid: 0, gid: 0, mtimeSec: opts.epoch, mtimeNsec: 0, xattrs: [], children: new Map() };
  root.children.set(LOST_FOUND, lostFound);

  const size = next + countNames(root);
  const entries = new Array<Entry>(size);
  const parentOf = new Uint32Array(size);
  const linksOf = new Uint32Array(size);
  const blocksOf = new Float64Array(size);
  const xblockOf = new Int32Array(size).fill(-1);
  const inInodeOf = new Map<number, DiskXattr[]>();
  const runsOf: Prepared['runs'] = new Map();
  const dirLayouts = new Map<number, DirLayout>();

  // Paths are made only for messages and for directories (their children's messages).
  const newNode = (ino: number, entry: Entry, path: string, parent: number) => {
    entries[ino] = entry;
    parentOf[ino] = parent;
    linksOf[ino] = 1;
    placeXattrs(ino, entry, path);
  };

  const placeXattrs = (ino: number, entry: Entry, path: string) => {
    if (entry.xattrs.length === 0) return;
    const disk = entry.xattrs.map((x) => toDiskXattr(x, path));
    const { inInode, inBlock } = splitXattrs(disk, opts.inodeSize, path);
    if (inInode.length) inInodeOf.set(ino, inInode);
    if (inBlock.length === 0) return;
    const key = xattrKey(inBlock);
    let idx = xblocks.get(key);
    if (idx === undefined) {
      idx = xattrBlocks.length;
      xattrBlocks.push({ attrs: inBlock, refs: 0 });
      xblocks.set(key, idx);
    }
    xattrBlocks[idx].refs++;
    xblockOf[ino] = idx;
  };

  // Inode numbers in depth-first order of bytewise-sorted names: parents before children.
  const visit = (dirIno: number, dir: DirEntry, dirPath: string) => {
    const names = [...dir.children.keys()].sort();
    const items = dirList(names.length);
    let count = 0;
    const add = (key: string, ino: number, type: Entry['type']) => {
      items.names[count] = key;
      items.inos[count] = ino;
      items.types[count++] = FILE_TYPE[type];
    };
    let subdirs = 0;
    for (const key of names) {
      const e = dir.children.get(key)!;
      const name = Buffer.from(key, 'latin1');
      const path = `${dirPath === '/' ? '' : dirPath}/${name.toString()}`;
      if (name.length > 255) throw new DiskwrightError('NAME_TOO_LONG', `${path}: name is ${name.length} bytes, ext4 allows 255; rename it`, { path });
      // Trees made through the API can hold any bytes: e2fsck calls these names illegal.
      if (name.length === 0 || name.includes(0) || name.includes(0x2f)) {
        throw new DiskwrightError('NAME_INVALID', `${JSON.stringify(path)}: a name cannot be empty or hold a NUL byte or "/"; rename it`, { path });
      }
      if (!validId(e.uid) || !validId(e.gid)) {
        throw new DiskwrightError('TOO_LARGE', `${path}: owner ${e.uid}:${e.gid} is outside what ext4 stores (0 to ${ID_MAX}); give a smaller owner`, { path });
      }
      let ino: number;
      if (dir === root && key === LOST_FOUND) {
        newNode((ino = LOST_FOUND_INO), e, path, dirIno);
      } else if (e.type !== 'dir' && e.linkKey && links.has(e.linkKey)) {
        ino = links.get(e.linkKey)!;
        linksOf[ino]++;
        add(key, ino, e.type);
        continue;
      } else {
        newNode((ino = next++), e, path, dirIno);
        if (e.type !== 'dir' && e.linkKey) links.set(e.linkKey, ino);
      }
      add(key, ino, e.type);
      if (e.type === 'dir') {
        subdirs++;
        visit(ino, e, path);
      } else {
        sizeLeaf(ino, e, path);
      }
    }
    layoutDir(dirIno, items, subdirs);
  };

  const layoutDir = (ino: number, children: DirList, subdirs: number) => {
    dirs++;
    linksOf[ino] = 2 + subdirs > MAX_LINKS ? 1 : 2 + subdirs;
    const linear = withDots(ino, parentOf[ino], children);
    const starts = packBlocks(linear);
    let d: DirLayout;
    if (starts.length <= 1) {
      d = { linear: { items: linear, starts } };
      blocksOf[ino] = 1;
    } else {
      d = { htree: planHtree(children, opts.hashSeed) };
      blocksOf[ino] = d.htree!.blocks;
    }
    if (ino === LOST_FOUND_INO && blocksOf[ino] < LOST_FOUND_BLOCKS) {
      d = { linear: { items: linear, starts } };
      blocksOf[ino] = LOST_FOUND_BLOCKS;
    }
    dirLayouts.set(ino, d);
  };

  const sizeLeaf = (ino: number, e: Entry, path: string) => {
    if (e.type === 'file') {
      if (e.size === 0) return;
      if (!e.runs) {
        blocksOf[ino] = Math.ceil(e.size / BLOCK_SIZE);
        return;
      }
      const runs = e.runs.map((r) => ({ logical: r.offset / BLOCK_SIZE, length: Math.ceil(r.length / BLOCK_SIZE) }));
      runsOf.set(ino, runs);
      blocksOf[ino] = runs.reduce((s, r) => s + r.length, 0);
    } else if (e.type === 'symlink') {
      if (e.target.length > 4095) {
        throw new DiskwrightError('SYMLINK_TOO_LONG', `${path}: symlink target is ${e.target.length} bytes, ext4 allows 4095; shorten it`, { path });
      }
      if (e.target.length === 0) throw new DiskwrightError('SOURCE_UNREADABLE', `${path}: symlink has an empty target`, { path });
      blocksOf[ino] = isFastSymlink(e.target) ? 0 : 1;
    }
  };

  newNode(ROOT_INO, root, '/', ROOT_INO);
  visit(ROOT_INO, root, '/');
  const maxIno = next - 1;
  let contentBlocks = xattrBlocks.length;
  for (let ino = 1; ino <= maxIno; ino++) contentBlocks += blocksOf[ino];
  return {
    entries, parent: parentOf, links: linksOf, blocks: blocksOf, xblock: xblockOf, inInode: inInodeOf, runs: runsOf, dirLayouts,
    maxIno, xattrBlocks, dirs, contentBlocks,
  };
}
