// The filesystems diskwright knows, as drivers: each says how to recognise
// it (magic), plan it from a tree at a size (need, fits, plan), open a reader
// on it, describe what only it has (for inspect), and how diff matches its
// entries. The disk compiler, prepared-image and input-format detection,
// inspect, extract and diff loop over this list, so a new filesystem is one
// folder with a driver.ts plus one line here.
import type { DirEntry } from '../tree/model.ts';
import type { Image } from '../image/extent-map.ts';
import type { ByteSource } from '../read/source.ts';
import type { FsReader, OwnedRange } from '../read/entry.ts';
import type { FsReport } from '../disk/compile.ts';
import { ext4Driver } from './ext4/driver.ts';
import { fatDriver } from './fat/driver.ts';

export interface FsDriver<C extends { fs: string; tree: DirEntry } = { fs: string; tree: DirEntry }, D extends object = object> {
  /** The name a disk spec's `fs:` uses. */
  name: string;
  /** What messages call it: "ext2/3/4", "FAT". */
  title: string;
  /** The fewest bytes a volume of this filesystem has, and what `magic` needs to see. */
  minSize: number;
  /** Whether `head`, a volume's first `minSize` bytes (or a disk's first bytes), starts with this filesystem's superblock or boot sector: a magic check, no validation. */
  magic(head: Buffer): boolean;
  /** A reader; throws a DiskwrightError on a broken volume. */
  open(src: ByteSource): FsReader;
  /** Whether the reader is this driver's. */
  owns(reader: FsReader): boolean;
  /** Bytes the content needs (plus its free space). */
  need(content: C): number;
  /** Whether a volume of `size` bytes can hold this filesystem at all. */
  fits(size: number): boolean;
  /** The filesystem of `content` filling `size` bytes, for a partition starting at sector `startSector`. Throws SIZE_TOO_SMALL when it does not fit. */
  plan(content: C, size: number, startSector: number): { image: Image; report: FsReport };
  /** What only this filesystem has, for inspect. */
  describe(reader: FsReader): D;
  /** Whether the root directory has an owner, mode and times of its own (FAT's has no directory entry to hold them). */
  rootAttributes: boolean;
  /** What diff matches entries of two images by: inode numbers (FsEntry.ino is the inode's identity) or paths (FsEntry.ino is where the entry's record lies). */
  identity: 'inode' | 'path';
  /** A range made of fixed-size records diff can name one by one: a table of inodes (from `first`) or of directory entries (looked up by offset). */
  records?(reader: FsReader, range: OwnedRange): RecordTable | undefined;
}

export type RecordTable = { kind: 'inodes'; first: number; size: number } | { kind: 'dir-entries'; size: number };

// One line per filesystem.
export const FS_DRIVERS: readonly FsDriver<never>[] = [ext4Driver, fatDriver] as readonly FsDriver<never>[];

/** The driver for a disk spec's `fs:` name. */
export function driverNamed(name: string): FsDriver | undefined {
  return FS_DRIVERS.find((d) => d.name === name) as FsDriver | undefined;
}

/** The driver whose filesystem the volume holds (by its magic alone), if any. */
export function probeFilesystem(src: ByteSource): FsDriver | undefined {
  return FS_DRIVERS.find((d) => src.size >= d.minSize && d.magic(src.read(0, d.minSize))) as FsDriver | undefined;
}

/** The driver whose magic the first bytes of a disk or volume show, if any (no size check: for telling a raw disk from other files). */
export function filesystemInHead(head: Buffer): FsDriver | undefined {
  return FS_DRIVERS.find((d) => d.magic(head)) as FsDriver | undefined;
}

/** The filesystems by title, for messages: "ext2/3/4 or FAT". */
export function filesystemTitles(): string {
  return FS_DRIVERS.map((d) => d.title).join(' or ');
}

/** The driver of an open reader. */
export function driverOf(reader: FsReader): FsDriver {
  const d = FS_DRIVERS.find((x) => x.owns(reader));
  if (!d) throw new Error('internal: a reader no driver owns');
  return d as FsDriver;
}
