// Input decoders: a disk image file of any format we write (raw, qcow2 with
// or without compressed clusters, VDI, VHD dynamic or fixed, raw .zst) opened
// as the virtual disk it holds. Every kind answers the same three things:
//   size     the virtual disk's size in bytes
//   image()  its extent map, which the emitters and format transforms consume
//            as they consume a planned disk: container data clusters/blocks
//            are FileExtents into the input file (read in long runs by the
//            emitter, never copied), compressed qcow2 clusters and .zst data
//            LazyExtents, unallocated and zero areas holes
//   read()   random access to the virtual disk (the readers behind inspect,
//            ls, cat, extract and diff sit on it; a ByteSource of src/read/)
// The format is found by its magic; raw is only assumed when the file looks
// like a disk (detectInput), since any bytes are a valid raw image.
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import { type Image, type ImageExtent, isFileExtent, sliceExtent } from '../image/extent-map.ts';
import { FileHandles, ImageReader, openForReading, preadFully } from '../image/random-access.ts';
import { RunFinder } from '../image/runs.ts';
import { dataSegments } from '../util/sparse.ts';
import { filesystemInHead } from '../fs/drivers.ts';
import { isQcow2, readQcow2 } from './qcow2.ts';
import { isVdi, readVdi } from './vdi.ts';
import { isVhd, readVhd } from './vhd.ts';
import { ZstdDisk, isZstd } from './zstd-input.ts';

export const INPUT_FORMATS = ['raw', 'qcow2', 'vdi', 'vpc', 'zstd'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

/** Names --input-format takes besides INPUT_FORMATS: output format names and file extensions. */
const INPUT_ALIASES: Record<string, InputFormat> = {
  img: 'raw',
  'qcow2-compressed': 'qcow2',
  vhd: 'vpc',
  'vhd-fixed': 'vpc',
  zst: 'zstd',
};

export interface OpenOptions {
  /** Skip detection: read the file as this format (raw accepts any bytes). */
  format?: string;
}

/** An opened disk image: the virtual disk inside it. Close it when done. */
export interface DiskSource {
  readonly path: string;
  readonly format: InputFormat;
  /** Human detail for messages, e.g. "qcow2", "dynamic VHD", "raw, zstd-compressed". */
  readonly description: string;
  /** Virtual disk size in bytes. */
  readonly size: number;
  /** The virtual disk's extent map (raw and .zst: scanned for zeros on the first call). */
  image(): Image;
  /**
   * The ranges the container stores (allocated clusters or blocks; raw: the
   * file's data, holes left out; .zst: as image()),
   * without image()'s scan for zeros: cheap, so diff can skip holes unread.
   * Compressed qcow2 clusters are its LazyExtents.
   */
  stored(): Image;
  /** Bytes [offset, offset + length) of the virtual disk; outside it is a RangeError. */
  read(offset: number, length: number): Buffer;
  readInto(dst: Buffer, dstOff: number, offset: number, length: number): void;
  close(): void;
}

/** The first MiB is what detection looks at. */
const HEAD_BYTES = 1 << 20;
const SECTOR = 512;
const SCAN_CHUNK = 8 << 20;

export function parseInputFormat(name: string): InputFormat {
  const f = (INPUT_FORMATS as readonly string[]).includes(name) ? (name as InputFormat) : INPUT_ALIASES[name];
  if (!f) {
    throw new DiskwrightError('OPTION_INVALID', `input format ${name}: use one of ${INPUT_FORMATS.join(', ')} (or vhd, vhd-fixed, qcow2-compressed)`, { format: name });
  }
  return f;
}

function readHeadTail(fd: number, size: number): { head: Buffer; tail: Buffer } {
  const head = Buffer.alloc(Math.min(size, HEAD_BYTES));
  preadFully(fd, head, 0, head.length, 0);
  const tail = Buffer.alloc(Math.min(size, SECTOR));
  preadFully(fd, tail, 0, tail.length, size - tail.length);
  return { head, tail };
}

/** Opens `file` and decodes its format (detected unless opts.format says). */
export function openImage(file: string, opts: OpenOptions = {}): DiskSource {
  const forced = opts.format === undefined ? undefined : parseInputFormat(opts.format);
  let fd = openForReading(file, true);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new DiskwrightError('SOURCE_UNREADABLE', `input ${file} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}; give a disk image file`, { path: file });
    const size = st.size;
    const { head, tail } = readHeadTail(fd, size);
    const format = forced ?? detectInput(file, head, tail, size);
    switch (format) {
      case 'raw':
        return rawSource(file, fd, size);
      case 'zstd':
        return zstdSource(file, fd, size);
      default:
        fs.closeSync(fd);
        fd = -1;
        return containerSource(file, format, head);
    }
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd);
    throw err;
  }
}

// ---------------------------------------------------------------- detection

/** Magics of files that are not disk images, for a helpful refusal. [offset, bytes, what, advice] */
const NOT_IMAGES: [number, Buffer, string, string][] = [
  [0, Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), 'an xz-compressed file', 'decompress it first (xz -dk FILE) and convert the result'],
  [0, Buffer.from([0x1f, 0x8b]), 'a gzip-compressed file', 'decompress it first (gzip -dk FILE) and convert the result'],
  [0, Buffer.from('BZh'), 'a bzip2-compressed file', 'decompress it first (bzip2 -dk FILE) and convert the result'],
  [0, Buffer.from([0x04, 0x22, 0x4d, 0x18]), 'an lz4-compressed file', 'decompress it first (lz4 -d FILE) and convert the result'],
  [0, Buffer.from('LZIP'), 'an lzip-compressed file', 'decompress it first (lzip -dk FILE) and convert the result'],
  [0, Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]), 'a 7z archive', 'extract the image from it first'],
  [0, Buffer.from('PK\x03\x04', 'latin1'), 'a zip archive', 'extract the image from it first'],
  [0, Buffer.from('Rar!\x1a\x07', 'latin1'), 'a RAR archive', 'extract the image from it first'],
  [257, Buffer.from('ustar'), 'a tar archive', 'extract the image from it first'],
  [0, Buffer.from('070701'), 'a cpio archive', 'extract the image from it first'],
  [0, Buffer.from('070707'), 'a cpio archive', 'extract the image from it first'],
  [0, Buffer.from('!<arch>\n'), 'an ar archive', 'give the disk image itself'],
  [8, Buffer.from('nix-archive-1'), 'a Nix archive (NAR)', 'give the disk image itself'],
  [0, Buffer.from('\x7fELF', 'latin1'), 'an ELF executable', 'give the disk image itself'],
  [0, Buffer.from('%PDF'), 'a PDF document', 'give the disk image itself'],
  [0, Buffer.from([0x89, 0x50, 0x4e, 0x47]), 'a PNG image', 'give the disk image itself'],
  [0, Buffer.from([0xff, 0xd8, 0xff]), 'a JPEG image', 'give the disk image itself'],
  [0, Buffer.from('SQLite format 3\0'), 'an SQLite database', 'give the disk image itself'],
  [0, Buffer.from('KDMV'), 'a VMDK image, which diskwright does not read', 'convert it with qemu-img convert -O qcow2 first'],
  [0, Buffer.from('# Disk DescriptorFile'), 'a VMDK descriptor, which diskwright does not read', 'convert it with qemu-img convert -O qcow2 first'],
  [0, Buffer.from('vhdxfile'), 'a VHDX image, which diskwright does not read', 'convert it with qemu-img convert -O vpc first'],
  [0, Buffer.from('QED\0'), 'a QED image, which diskwright does not read', 'convert it with qemu-img convert -O qcow2 first'],
  [0, Buffer.from('WithoutFreeSpace'), 'a Parallels image, which diskwright does not read', 'convert it with qemu-img convert -O qcow2 first'],
  [0, Buffer.from('WithouFreSpacExt'), 'a Parallels image, which diskwright does not read', 'convert it with qemu-img convert -O qcow2 first'],
  [0, Buffer.from('#!'), 'a script', 'give the disk image itself'],
];

function at(head: Buffer, offset: number, bytes: Buffer | string): boolean {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  return head.length >= offset + b.length && head.subarray(offset, offset + b.length).equals(b);
}

/** Partition table or filesystem signatures in the first MiB: the evidence that a file is a raw disk. */
export function diskSignature(head: Buffer): string | null {
  if (head.length >= 4096 && (at(head, 512, 'EFI PART') || at(head, 4096, 'EFI PART'))) return 'GPT';
  const filesystem = filesystemInHead(head);
  if (filesystem) return filesystem.title;
  if (at(head, 0x8001, 'CD001')) return 'ISO 9660';
  if (at(head, 0, 'hsqs') || at(head, 0, 'sqsh')) return 'squashfs';
  if (at(head, 0, 'XFSB')) return 'XFS';
  if (at(head, 0x10040, '_BHRfS_M')) return 'btrfs';
  if (at(head, 0, 'LUKS\xba\xbe')) return 'LUKS';
  if (at(head, 512, 'LABELONE')) return 'LVM';
  if (at(head, 4086, 'SWAPSPACE2') || at(head, 4086, 'SWAP-SPACE')) return 'swap';
  if (head.length >= 1028 && head.readUInt32LE(1024) === 0xf2f52010) return 'F2FS';
  if (head.length >= 1028 && head.readUInt32LE(1024) === 0xe0f5e1e2) return 'EROFS';
  // A UEFI firmware volume, such as a variable store (OVMF_VARS.fd) that inspect lists.
  if (at(head, 40, '_FVH')) return 'firmware volume';
  // A boot sector: MBR, FAT, NTFS, exFAT all end their first sector with 55 AA.
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa) return 'boot sector';
  return null;
}

function looksLikeText(head: Buffer): boolean {
  const n = Math.min(head.length, 4096);
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = head[i];
    if (c === 0 || (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0x0c && c !== 0x1b)) return false;
  }
  return true;
}

function notImage(file: string, what: string): never {
  const code = what.includes('diskwright does not read') ? 'INPUT_UNSUPPORTED' : 'INPUT_NOT_IMAGE';
  throw new DiskwrightError(code, `${file} ${what}`, { path: file });
}

/**
 * The format of a file from its first MiB (`head`) and last sector (`tail`).
 * Container magics decide; other known file types are refused by name; raw
 * needs a size that is a positive multiple of 512 and a partition table or
 * filesystem signature in the first MiB, or a first MiB of zeros.
 */
export function detectInput(file: string, head: Buffer, tail: Buffer, size: number): InputFormat {
  if (size === 0) notImage(file, 'is empty; give a disk image file');
  if (isQcow2(head)) return 'qcow2';
  if (isVdi(head)) return 'vdi';
  if (at(head, 0, 'conectix')) return 'vpc';
  if (isZstd(head)) return 'zstd';
  for (const [offset, magic, what, advice] of NOT_IMAGES) {
    if (at(head, offset, magic)) notImage(file, `is ${what}, not a disk image; ${advice.replace('FILE', file)}`);
  }
  if (isVhd(head, tail)) return 'vpc'; // fixed: the footer is only at the end
  const sizeOk = size % SECTOR === 0;
  if (sizeOk && (diskSignature(head) !== null || head.every((b) => b === 0))) return 'raw';
  if (looksLikeText(head)) notImage(file, 'is a text file, not a disk image; give a raw, qcow2, VDI, VHD or .zst image');
  const why = sizeOk
    ? 'no qcow2, VDI, VHD or zstd header, and no partition table or filesystem signature in its first MiB'
    : `no qcow2, VDI, VHD or zstd header, and its size (${size} bytes) is not a multiple of 512`;
  notImage(file, `does not look like a disk image (${why}); if it is a raw disk image, say --input-format raw`);
}

// ---------------------------------------------------------------- sources

function containerSource(file: string, format: InputFormat, head: Buffer): DiskSource {
  const handles = new FileHandles();
  try {
    const stored = format === 'qcow2' ? readQcow2(file, handles) : format === 'vdi' ? readVdi(file) : readVhd(file);
    const reader = new ImageReader(stored, handles);
    const description = format === 'vpc' ? (at(head, 0, 'conectix') ? 'dynamic VHD' : 'fixed VHD') : format === 'vdi' ? 'VDI' : 'qcow2';
    let scanned: Image | null = null;
    return {
      path: file,
      format,
      description,
      size: stored.size,
      image: () => (scanned ??= scanExtents(stored, handles, file)),
      stored: () => stored,
      read: (offset, length) => reader.read(offset, length),
      readInto: (dst, dstOff, offset, length) => reader.readInto(dst, dstOff, offset, length),
      close: () => handles.close(),
    };
  } catch (err) {
    handles.close();
    throw err;
  }
}

/**
 * A raw file. The file system says where its data lies (SEEK_DATA /
 * SEEK_HOLE, asked once, on first use): holes are never read, neither by the
 * scan for zeros behind image() nor by reads, which fill them with zeros.
 */
function rawSource(file: string, fd: number, size: number): DiskSource {
  let segments: [number, number][] | null = null;
  const data = () => (segments ??= dataSegments(fd, size));
  const readFile = (dst: Buffer, dstOff: number, offset: number, length: number) => {
    if (preadFully(fd, dst, dstOff, length, offset) < length) {
      throw new DiskwrightError('SOURCE_CHANGED', `${file} is shorter than when it was opened (${size} bytes); read it when nobody is writing to it`, { path: file });
    }
  };
  const readInto = (dst: Buffer, dstOff: number, offset: number, length: number) => {
    if (!(offset >= 0 && length >= 0 && offset + length <= size)) {
      throw new RangeError(`read of ${length} bytes at ${offset} is outside the ${size}-byte image`);
    }
    const segs = data();
    // First segment ending after `offset`.
    let lo = 0;
    let hi = segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (segs[mid][1] <= offset) lo = mid + 1;
      else hi = mid;
    }
    let pos = offset;
    const end = offset + length;
    for (let i = lo; pos < end; i++) {
      const [s, t] = i < segs.length ? segs[i] : [end, end];
      const from = Math.min(Math.max(s, pos), end);
      dst.fill(0, dstOff + pos - offset, dstOff + from - offset);
      const to = Math.min(t, end);
      if (to > from) readFile(dst, dstOff + from - offset, from, to - from);
      pos = Math.max(from, to);
    }
  };
  let stored: Image | null = null;
  const storedImage = () => (stored ??= {
    size,
    extents: data().map(([s, t]) => ({ offset: s, length: t - s, path: Buffer.from(file), fileOffset: s, expectSize: size })),
  });
  let image: Image | null = null;
  return {
    path: file,
    format: 'raw',
    description: 'raw',
    size,
    image() {
      if (!image) {
        const handles = new FileHandles();
        try {
          image = scanExtents(storedImage(), handles, file);
        } finally {
          handles.close();
        }
      }
      return image;
    },
    read(offset, length) {
      const out = Buffer.alloc(length);
      readInto(out, 0, offset, length);
      return out;
    },
    stored: storedImage,
    readInto,
    close: () => fs.closeSync(fd),
  };
}

/**
 * `image` with every FileExtent cut to its runs of non-zero 4 KiB granules
 * (RunFinder; granules counted from the extent's start), so zeros a
 * container stored (preallocated or fixed images, partly written blocks)
 * become holes as a raw file's do. Reads the data once; lazy extents are kept
 * as they are (producing them costs as much as copying them).
 */
function scanExtents(image: Image, handles: FileHandles, file: string): Image {
  const extents: ImageExtent[] = [];
  let chunk: Buffer | null = null;
  for (const e of image.extents) {
    if (!isFileExtent(e)) {
      extents.push(e);
      continue;
    }
    chunk ??= Buffer.alloc(SCAN_CHUNK);
    const fd = handles.fd(e.path);
    const finder = new RunFinder();
    while (finder.pos < e.length) {
      const want = Math.min(chunk.length, e.length - finder.pos);
      const n = preadFully(fd, chunk, 0, want, e.fileOffset + finder.pos);
      if (n < want) throw new DiskwrightError('SOURCE_CHANGED', `${file} is shorter than when it was opened; read it when nobody is writing to it`, { path: file });
      finder.push(chunk.subarray(0, n));
    }
    for (const [s, t] of finder.finish()) extents.push(sliceExtent(e, s, t - s, e.offset + s));
  }
  return { size: image.size, extents };
}

function zstdSource(file: string, fd: number, fileSize: number): DiskSource {
  const z = new ZstdDisk(file, fd, fileSize);
  return {
    path: file,
    format: 'zstd',
    description: 'raw, zstd-compressed',
    size: z.size,
    image: () => z.image(),
    stored: () => z.image(),
    read: (offset, length) => z.read(offset, length),
    readInto: (dst, dstOff, offset, length) => z.readInto(dst, dstOff, offset, length),
    close: () => z.close(),
  };
}
