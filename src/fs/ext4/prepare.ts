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

/**
 * One per inode, kept from planning until the image is written (its inode and
 * directory blocks are made then): only what the encoders need, nothing
 * held per child but the DirList slots.
 */
export interface Node {
  ino: number;
  entry: Entry;
  parent: number;
  links: number;
  /** Content blocks: file data, directory blocks, a slow symlink's block. */
  blocks: number;
  /** A sparse file's data as logical block runs (holes between them); undefined: blocks [0, blocks). */
  runs?: Array<{ logical: number; length: number }>;
  linear?: { items: DirList; starts: number[] };
  htree?: HtreePlan;
  fastSymlink?: boolean;
  inInode: DiskXattr[];
  /** Index into Prepared.xattrBlocks, or -1. */
  xblock: number;
}

export interface Prepared {
  nodes: Node[]; // indexed by inode number; holes for reserved inodes
  maxIno: number;
  xattrBlocks: Array<{ attrs: DiskXattr[]; refs: number }>;
  dirs: number;
  /** Blocks every inode together needs (content + xattr blocks), before extent-tree blocks. */
  contentBlocks: number;
}

const LOST_FOUND_BLOCKS = 4; // 16 KiB, as mke2fs makes it, so e2fsck can reconnect files without allocating
const LOST_FOUND = byteName('lost+found');

const FILE_TYPE: Record<Entry['type'], number> = {
  file: FT_REG, dir: FT_DIR, symlink: FT_SYMLINK, chr: FT_CHR, blk: FT_BLK, fifo: FT_FIFO, sock: FT_SOCK,
};

/** Shared by every inode without in-inode attributes. */
const NO_XATTRS: DiskXattr[] = [];

const validId = (id: number) => Number.isInteger(id) && id >= 0 && id <= ID_MAX;

export function prepare(root: DirEntry, opts: { inodeSize: number; hashSeed: Uint32Array; epoch: number }): Prepared {
  const nodes: Node[] = [];
  const links = new Map<string, Node>();
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

  // Paths are made only for messages and for directories (their children's messages).
  const newNode = (ino: number, entry: Entry, path: string, parent: number): Node => {
    const n: Node = { ino, entry, parent, links: 1, blocks: 0, inInode: NO_XATTRS, xblock: -1 };
    nodes[ino] = n;
    placeXattrs(n, path);
    return n;
  };

  const placeXattrs = (n: Node, path: string) => {
    if (n.entry.xattrs.length === 0) return;
    const disk = n.entry.xattrs.map((x) => toDiskXattr(x, path));
    const { inInode, inBlock } = splitXattrs(disk, opts.inodeSize, path);
    n.inInode = inInode;
    if (inBlock.length === 0) return;
    const key = xattrKey(inBlock);
    let idx = xblocks.get(key);
    if (idx === undefined) {
      idx = xattrBlocks.length;
      xattrBlocks.push({ attrs: inBlock, refs: 0 });
      xblocks.set(key, idx);
    }
    xattrBlocks[idx].refs++;
    n.xblock = idx;
  };

  // Inode numbers in depth-first order of bytewise-sorted names: parents before children.
  const visit = (dirNode: Node, dir: DirEntry, dirPath: string) => {
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
      let node: Node;
      if (dir === root && key === LOST_FOUND) {
        node = newNode(LOST_FOUND_INO, e, path, dirNode.ino);
      } else if (e.type !== 'dir' && e.linkKey && links.has(e.linkKey)) {
        node = links.get(e.linkKey)!;
        node.links++;
        add(key, node.ino, e.type);
        continue;
      } else {
        node = newNode(next++, e, path, dirNode.ino);
        if (e.type !== 'dir' && e.linkKey) links.set(e.linkKey, node);
      }
      add(key, node.ino, e.type);
      if (e.type === 'dir') {
        subdirs++;
        visit(node, e, path);
      } else {
        sizeLeaf(node, path);
      }
    }
    layoutDir(dirNode, items, subdirs);
  };

  const layoutDir = (n: Node, children: DirList, subdirs: number) => {
    dirs++;
    n.links = 2 + subdirs > MAX_LINKS ? 1 : 2 + subdirs;
    const linear = withDots(n.ino, n.parent, children);
    const starts = packBlocks(linear);
    if (starts.length <= 1) {
      n.linear = { items: linear, starts };
      n.blocks = 1;
    } else {
      n.htree = planHtree(children, opts.hashSeed);
      n.blocks = n.htree.blocks;
    }
    if (n.ino === LOST_FOUND_INO && n.blocks < LOST_FOUND_BLOCKS) {
      n.htree = undefined;
      n.linear = { items: linear, starts };
      n.blocks = LOST_FOUND_BLOCKS;
    }
  };

  const sizeLeaf = (n: Node, path: string) => {
    const e = n.entry;
    if (e.type === 'file') {
      if (e.size === 0) return;
      if (!e.runs) {
        n.blocks = Math.ceil(e.size / BLOCK_SIZE);
        return;
      }
      n.runs = e.runs.map((r) => ({ logical: r.offset / BLOCK_SIZE, length: Math.ceil(r.length / BLOCK_SIZE) }));
      n.blocks = n.runs.reduce((s, r) => s + r.length, 0);
    } else if (e.type === 'symlink') {
      if (e.target.length > 4095) {
        throw new DiskwrightError('SYMLINK_TOO_LONG', `${path}: symlink target is ${e.target.length} bytes, ext4 allows 4095; shorten it`, { path });
      }
      if (e.target.length === 0) throw new DiskwrightError('SOURCE_UNREADABLE', `${path}: symlink has an empty target`, { path });
      n.fastSymlink = e.target.length < 60;
      n.blocks = n.fastSymlink ? 0 : 1;
    }
  };

  const rootNode = newNode(ROOT_INO, root, '/', ROOT_INO);
  visit(rootNode, root, '/');
  const maxIno = next - 1;
  let contentBlocks = xattrBlocks.length;
  for (const n of nodes) if (n) contentBlocks += n.blocks;
  return { nodes, maxIno, xattrBlocks, dirs, contentBlocks };
}
