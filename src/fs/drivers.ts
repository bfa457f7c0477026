// The filesystems diskwright knows, as drivers: each says how to recognise
// it (probe), plan it from a tree at a size (need, fits, plan), open a reader
// on it, and describe what only it has (for inspect). The disk compiler,
// prepared-image detection and inspect loop over this list, so a new
// filesystem is one folder with a driver.ts plus one line here.
import type { DirEntry } from '../tree/model.ts';
import type { Image } from '../image/extent-map.ts';
import type { ByteSource } from '../read/source.ts';
import type { FsReader } from '../read/entry.ts';
import type { FsReport } from '../disk/compile.ts';
import { ext4Driver } from './ext4/driver.ts';
import { fatDriver } from './fat/driver.ts';

export interface FsDriver<C extends { fs: string; tree: DirEntry } = { fs: string; tree: DirEntry }, D extends object = object> {
  /** The name a disk spec's `fs:` uses. */
  name: string;
  /** Whether the volume starts with this filesystem's superblock or boot sector (a magic check, no validation). */
  probe(src: ByteSource): boolean;
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
}

// One line per filesystem.
export const FS_DRIVERS: readonly FsDriver<never>[] = [ext4Driver, fatDriver] as readonly FsDriver<never>[];

/** The driver for a disk spec's `fs:` name. */
export function driverNamed(name: string): FsDriver | undefined {
  return FS_DRIVERS.find((d) => d.name === name) as FsDriver | undefined;
}

/** The driver whose filesystem the volume holds, if any. */
export function probeFilesystem(src: ByteSource): FsDriver | undefined {
  return FS_DRIVERS.find((d) => d.probe(src)) as FsDriver | undefined;
}

/** The driver of an open reader. */
export function driverOf(reader: FsReader): FsDriver {
  const d = FS_DRIVERS.find((x) => x.owns(reader));
  if (!d) throw new Error('internal: a reader no driver owns');
  return d as FsDriver;
}
