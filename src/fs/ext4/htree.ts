// Hashed (htree) directories: block 0 is the dx root, then leaf blocks of
// entries in hash order, then (for big directories) one level of dx nodes.
// Reference: Documentation/filesystems/ext4/directory.rst, "Hash Tree Directories"
import { crc32c } from '../../util/crc32c.ts';
import { BLOCK_SIZE, HASH_HALF_MD4 } from './constants.ts';
import { dirhash } from './dirhash.ts';
import { type DirList, dirList, encodeLeaf, packBlocks } from './dir-entry.ts';

const ROOT_COUNT_AT = 0x20;
const NODE_COUNT_AT = 0x8;
const ROOT_LIMIT = (BLOCK_SIZE - ROOT_COUNT_AT - 8) / 8; // 507, after the dx_tail
const NODE_LIMIT = (BLOCK_SIZE - NODE_COUNT_AT - 8) / 8; // 510

export interface HtreePlan {
  items: DirList; // children sorted by hash
  leafStarts: number[];
  leafHashes: number[]; // dx entry hash of each leaf (bit 0 set: continues a collision run)
  levels: 0 | 1;
  blocks: number; // total directory blocks: root + leaves + nodes
}

/** Plans the htree for a directory's children (unsigned half-MD4, seeded). */
export function planHtree(children: DirList, seed: Uint32Array): HtreePlan {
  // Sort by hash; equal hashes keep the children's bytewise name order. The key
  // hash * 2^21 + index is exact in a double, so a native typed-array sort does it.
  const n = children.names.length;
  if (n >= 2 ** 21) throw new Error('directory has too many entries for one htree');
  const keys = new Float64Array(n);
  const scratch = Buffer.allocUnsafe(255);
  for (let i = 0; i < n; i++) {
    const len = scratch.write(children.names[i], 0, 'latin1');
    keys[i] = dirhash(scratch.subarray(0, len), HASH_HALF_MD4, true, seed).hash * 2 ** 21 + i;
  }
  keys.sort();
  const items = dirList(n);
  const hashes = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const idx = keys[i] % 2 ** 21;
    items.names[i] = children.names[idx];
    items.inos[i] = children.inos[idx];
    items.types[i] = children.types[idx];
    hashes[i] = (keys[i] - idx) / 2 ** 21;
  }
  const leafStarts = packBlocks(items);
  const leafHashes = leafStarts.map((s, i) => {
    if (i === 0) return 0;
    const h = hashes[s];
    // A run of equal hashes split across leaves: flag the continuation (bit 0).
    return h === hashes[s - 1] ? (h | 1) >>> 0 : h;
  });
  const leaves = leafStarts.length;
  if (leaves > ROOT_LIMIT * NODE_LIMIT) throw new Error('directory too large for a two-level htree');
  const levels = leaves > ROOT_LIMIT ? 1 : 0;
  const nodes = levels ? Math.ceil(leaves / NODE_LIMIT) : 0;
  return { items, leafStarts, leafHashes, levels, blocks: 1 + leaves + nodes };
}

/** Encodes all blocks of the directory, in logical order, into `out` (zeroed, p.blocks blocks). */
export function encodeHtree(p: HtreePlan, self: number, parent: number, inodeCsumSeed: number, out: Buffer): void {
  for (let i = 0; i < p.blocks; i++) encodeHtreeBlock(p, i, self, parent, inodeCsumSeed, out.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
}

/**
 * Encodes the directory's logical block `i` into `b` (zeroed, one block): the
 * root, a leaf or a dx node. One block at a time, so directory blocks can be
 * made when the emitter reaches them instead of held from planning on.
 */
export function encodeHtreeBlock(p: HtreePlan, i: number, self: number, parent: number, inodeCsumSeed: number, b: Buffer): void {
  const leaves = p.leafStarts.length;
  if (i >= 1 && i <= leaves) {
    const end = i < leaves ? p.leafStarts[i] : p.items.names.length;
    encodeLeaf(p.items, p.leafStarts[i - 1], end, inodeCsumSeed, b);
    return;
  }
  // dx entries: the root's point at leaves (levels 0) or at the nodes after them (levels 1).
  const entries = (first: number, count: number, toNodes: boolean): Array<{ hash: number; block: number }> => {
    const out: Array<{ hash: number; block: number }> = [];
    for (let k = first; k < first + count; k++) {
      out.push(toNodes ? { hash: p.leafHashes[k * NODE_LIMIT], block: 1 + leaves + k } : { hash: p.leafHashes[k], block: 1 + k });
    }
    return out;
  };
  if (i > leaves) {
    const n = i - 1 - leaves;
    b.writeUInt32LE(0, 0);
    b.writeUInt16LE(BLOCK_SIZE, 4); // a fake empty record spanning the block
    writeDx(b, NODE_COUNT_AT, NODE_LIMIT, entries(n * NODE_LIMIT, Math.min(NODE_LIMIT, leaves - n * NODE_LIMIT), false), inodeCsumSeed);
    return;
  }
  // "." and ".." as in a linear block; ".." spans the rest, hiding the dx data from old readers.
  b.writeUInt32LE(self, 0);
  b.writeUInt16LE(12, 4);
  b[6] = 1;
  b[7] = 2;
  b[8] = 0x2e;
  b.writeUInt32LE(parent, 12);
  b.writeUInt16LE(BLOCK_SIZE - 12, 16);
  b[18] = 2;
  b[19] = 2;
  b[20] = 0x2e;
  b[21] = 0x2e;
  // dx_root_info
  b.writeUInt32LE(0, 0x18);
  b[0x1c] = HASH_HALF_MD4;
  b[0x1d] = 8;
  b[0x1e] = p.levels;
  b[0x1f] = 0;
  if (p.levels === 0) writeDx(b, ROOT_COUNT_AT, ROOT_LIMIT, entries(0, leaves, false), inodeCsumSeed);
  else writeDx(b, ROOT_COUNT_AT, ROOT_LIMIT, entries(0, Math.ceil(leaves / NODE_LIMIT), true), inodeCsumSeed);
}

function writeDx(b: Buffer, at: number, limit: number, entries: Array<{ hash: number; block: number }>, seed: number) {
  if (entries.length > limit) throw new Error('dx block overflow');
  b.writeUInt16LE(limit, at);
  b.writeUInt16LE(entries.length, at + 2);
  b.writeUInt32LE(entries[0].block, at + 4); // entry 0 has no hash: it covers everything below entry 1
  for (let i = 1; i < entries.length; i++) {
    b.writeUInt32LE(entries[i].hash, at + i * 8);
    b.writeUInt32LE(entries[i].block, at + i * 8 + 4);
  }
  // dx_tail after `limit` entries: checksum over the used entries, then the
  // whole tail with dt_checksum still zero.
  const tail = at + limit * 8;
  let c = crc32c(seed, b, 0, at + entries.length * 8);
  c = crc32c(c, b, tail, tail + 8);
  b.writeUInt32LE(c, tail + 4);
}

// ---------------------------------------------------------------- decoding

/** dx_root_info of a hashed directory's block 0: the hash, its length, the index levels below the root, and where the dx entries start. */
export function decodeDxRoot(root: Buffer): { hashVersion: number; infoLength: number; levels: number; entriesAt: number } {
  const infoLength = root[0x1d];
  return { hashVersion: root[0x1c], infoLength, levels: root[0x1e], entriesAt: 0x18 + infoLength };
}

/** The dx entries at `at` (a root's entriesAt, or 8 in an interior node): dx_countlimit, then (hash, block) pairs; entry 0 has no hash. */
export function decodeDxEntries(b: Buffer, at: number): { limit: number; count: number; hash(k: number): number; block(k: number): number } {
  return {
    limit: b.readUInt16LE(at),
    count: b.readUInt16LE(at + 2),
    hash: (k) => b.readUInt32LE(at + k * 8),
    // The top 4 bits are reserved (the kernel masks them: dx_get_block).
    block: (k) => b.readUInt32LE(at + k * 8 + 4) & 0x0fffffff,
  };
}

/** Where entries start in an interior dx node (after its fake empty dirent). */
export const DX_NODE_ENTRIES_AT = NODE_COUNT_AT;
