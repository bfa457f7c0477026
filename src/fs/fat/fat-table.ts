// The File Allocation Table. Spec: fatgen103 section 4 (FAT entries, the two
// reserved entries, EOC marks) and 4.2 (FAT12 packing: 1.5 bytes per entry).
//
// Entries live in a Uint32Array while planning; encode() packs them for the
// type. Only the part up to the last allocated cluster is returned: the rest of
// each FAT copy is zero (free) and stays a hole in the image.
import { ENTRY_MASK, EOC, MEDIA, type FatType } from './constants.ts';

export class FatTable {
  readonly type: FatType;
  private entries: Uint32Array;
  /** Next cluster to hand out: allocation is one contiguous sweep from cluster 2. */
  private next = 2;

  constructor(type: FatType, usedClusters: number) {
    this.type = type;
    this.entries = new Uint32Array(2 + usedClusters);
    // FAT[0]: the media byte in the low 8 bits, every other bit set. FAT[1]: an
    // EOC mark, whose top bits (FAT16/32) also say "cleanly unmounted, no errors".
    this.entries[0] = (ENTRY_MASK[type] & ~0xff) | MEDIA;
    this.entries[1] = ENTRY_MASK[type];
  }

  /** Chains `count` clusters after the previous allocation; returns the first (0 for none). */
  allocate(count: number): number {
    if (count === 0) return 0;
    const first = this.next;
    if (first + count > this.entries.length) throw new Error('internal: FAT allocation beyond the planned clusters');
    for (let c = first; c < first + count - 1; c++) this.entries[c] = c + 1;
    this.entries[first + count - 1] = EOC[this.type];
    this.next += count;
    return first;
  }

  /** Clusters handed out so far. */
  get used(): number {
    return this.next - 2;
  }

  encode(): Buffer {
    const n = this.next; // entries 0 .. next-1 hold something
    const e = this.entries;
    if (this.type === 12) {
      const b = Buffer.alloc(Math.ceil((n * 3) / 2));
      for (let i = 0; i < n; i++) {
        const o = (i * 3) >> 1;
        const v = e[i];
        if (i & 1) {
          b[o] = (b[o] & 0x0f) | ((v & 0x0f) << 4);
          b[o + 1] = v >> 4;
        } else {
          b[o] = v & 0xff;
          b[o + 1] = (b[o + 1] & 0xf0) | (v >> 8);
        }
      }
      return b;
    }
    if (this.type === 16) {
      const b = Buffer.alloc(n * 2);
      for (let i = 0; i < n; i++) b.writeUInt16LE(e[i], i * 2);
      return b;
    }
    const b = Buffer.alloc(n * 4);
    for (let i = 0; i < n; i++) b.writeUInt32LE(e[i], i * 4);
    return b;
  }
}
