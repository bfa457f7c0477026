// The Nix ARchive (NAR) format, written as a stream.
//
// A NAR is a sequence of byte strings, each a little-endian u64 length, the
// bytes, and zeros up to a multiple of 8:
//
//   nar      = "nix-archive-1" node
//   node     = "(" "type" ( "regular" ["executable" ""] "contents" <bytes>
//                        | "symlink" "target" <target>
//                        | "directory" { "entry" "(" "name" <name> "node" node ")" } ) ")"
//
// Directory entries come in bytewise order of their names. Nothing else is
// recorded: no owners, times, permissions other than the owner-execute bit,
// hard links (a file linked twice is written twice) or empty-directory
// distinctions beyond the node itself. See Eelco Dolstra's thesis, figure 5.2,
// and nix's src/libutil/archive.cc.
//
// The writer plans the NAR as an Image (framing as buffers, file bytes as
// file extents) and the one emitter writes it, so memory grows with the
// number of entries, not with the file sizes.
import { tally } from '../util/progress.ts';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import type { Image, ImageExtent } from '../image/extent-map.ts';
import { emit, type Sink } from '../format/raw.ts';
import type { Entry } from '../tree/model.ts';

export type NarNode =
  | { type: 'regular'; executable: boolean; size: number; path: Buffer }
  | { type: 'symlink'; target: Buffer }
  /** `entries` may come in any order; the writer sorts them bytewise. */
  | { type: 'directory'; path: Buffer; entries(): Array<[name: Buffer, node: () => NarNode]> };

/**
 * Receives the NAR in order. The chunk is only valid during the call (the
 * writer reuses its buffer), so consume or copy it before returning.
 */
export type NarChunkSink = (chunk: Buffer) => void;

const S_IFMT = 0o170000;

function unreadable(path: Buffer, err: unknown): never {
  const reason = (err as NodeJS.ErrnoException).code ?? String(err);
  throw new DiskwrightError('SOURCE_UNREADABLE', `cannot read ${path.toString()}: ${reason}; fix its permissions or leave it out`, { path: path.toString(), reason });
}

/** A node for what is at `path` on this machine (lstat: a symlink stays a symlink). Directories are read when the writer reaches them. */
export function narNodeOfPath(path: string | Buffer): NarNode {
  const p = typeof path === 'string' ? Buffer.from(path) : path;
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DiskwrightError('SOURCE_MISSING', `${p.toString()} does not exist; give an existing file, directory or symlink`, { path: p.toString() });
    }
    unreadable(p, err);
  }
  switch (st.mode & S_IFMT) {
    case 0o100000:
      return { type: 'regular', executable: (st.mode & 0o100) !== 0, size: st.size, path: p };
    case 0o120000: {
      let target: Buffer;
      try {
        target = fs.readlinkSync(p, { encoding: 'buffer' });
      } catch (err) {
        unreadable(p, err);
      }
      return { type: 'symlink', target };
    }
    case 0o040000:
      return {
        type: 'directory',
        path: p,
        entries() {
          let names: Buffer[];
          try {
            names = fs.readdirSync(p, { encoding: 'buffer' });
          } catch (err) {
            unreadable(p, err);
          }
          return names.map((name) => [name, () => narNodeOfPath(Buffer.concat([p, SLASH, name]))]);
        },
      };
    default:
      throw new DiskwrightError('NAR_UNSUPPORTED', `${p.toString()} is a ${kindName(st.mode)}; a NAR holds only regular files, directories and symlinks, so remove it from the tree`, { path: p.toString() });
  }
}

const SLASH = Buffer.from('/');

function kindName(mode: number): string {
  switch (mode & S_IFMT) {
    case 0o020000: return 'character device';
    case 0o060000: return 'block device';
    case 0o010000: return 'fifo';
    case 0o140000: return 'socket';
    default: return `file of type ${(mode & S_IFMT).toString(8)}`;
  }
}

/** A node for a FileTree entry (names are latin1 byte strings there); `at` names it in errors. */
export function narNodeOfEntry(entry: Entry, at: Buffer = Buffer.from('.')): NarNode {
  switch (entry.type) {
    case 'file':
      return { type: 'regular', executable: (entry.mode & 0o100) !== 0, size: entry.size, path: entry.sourcePath };
    case 'symlink':
      return { type: 'symlink', target: entry.target };
    case 'dir':
      return {
        type: 'directory',
        path: at,
        entries: () =>
          [...entry.children].map(([key, child]) => {
            const name = Buffer.from(key, 'latin1');
            return [name, () => narNodeOfEntry(child, Buffer.concat([at, SLASH, name]))] as [Buffer, () => NarNode];
          }),
      };
    default:
      throw new DiskwrightError('NAR_UNSUPPORTED', `${at.toString()} is a ${entry.type} entry; a NAR holds only regular files, directories and symlinks, so remove it from the tree`, { path: at.toString() });
  }
}

const tok = (s: string) => Buffer.from(s, 'latin1');
const T = {
  magic: tok('nix-archive-1'),
  open: tok('('),
  close: tok(')'),
  type: tok('type'),
  regular: tok('regular'),
  executable: tok('executable'),
  empty: tok(''),
  contents: tok('contents'),
  symlink: tok('symlink'),
  target: tok('target'),
  directory: tok('directory'),
  entry: tok('entry'),
  name: tok('name'),
  node: tok('node'),
};

const RUN = 64 << 10;
const pad8 = (n: number) => (8 - (n % 8)) % 8;

/**
 * Lays a NAR out as an Image: the framing strings go into shared runs of
 * buffer, each file's bytes are a file extent, and the zero padding after
 * them is a gap (gaps read as zero), so the one emitter reads the files.
 */
class NarPlanner {
  extents: ImageExtent[] = [];
  size = 0;
  private run = Buffer.allocUnsafe(RUN);
  private used = 0; // bytes of `run` already handed to extents
  private fill = 0;
  private runAt = 0; // image offset of run[used]

  private room(n: number): void {
    if (this.fill + n <= this.run.length) return;
    this.close();
    this.run = Buffer.allocUnsafe(Math.max(RUN, n));
    this.used = this.fill = 0;
    this.runAt = this.size;
  }

  /** Ends the current run of framing bytes as a buffer extent. */
  private close(): void {
    if (this.fill > this.used) this.extents.push({ offset: this.runAt, length: this.fill - this.used, buffer: this.run.subarray(this.used, this.fill) });
    this.used = this.fill;
    this.runAt = this.size;
  }

  private u64(n: number): void {
    this.room(8);
    this.run.writeUInt32LE(n >>> 0, this.fill);
    this.run.writeUInt32LE(Math.floor(n / 0x1_0000_0000), this.fill + 4);
    this.fill += 8;
    this.size += 8;
  }

  /** A byte string: length, bytes, zero padding to 8. */
  str(b: Buffer): void {
    this.u64(b.length);
    const p = pad8(b.length);
    this.room(b.length + p);
    b.copy(this.run, this.fill);
    this.run.fill(0, this.fill + b.length, this.fill + b.length + p);
    this.fill += b.length + p;
    this.size += b.length + p;
  }

  /** A file's bytes as one string: read by the emitter, never here. */
  contents(path: Buffer, size: number): void {
    this.u64(size);
    this.close();
    if (size > 0) this.extents.push({ offset: this.size, length: size, path, fileOffset: 0, expectSize: size });
    this.size += size + pad8(size);
    this.runAt = this.size;
  }

  node(n: NarNode): void {
    this.str(T.open);
    this.str(T.type);
    switch (n.type) {
      case 'regular':
        this.str(T.regular);
        if (n.executable) {
          this.str(T.executable);
          this.str(T.empty);
        }
        this.str(T.contents);
        this.contents(n.path, n.size);
        break;
      case 'symlink':
        this.str(T.symlink);
        this.str(T.target);
        this.str(n.target);
        break;
      case 'directory': {
        this.str(T.directory);
        const entries = n.entries().sort((a, b) => Buffer.compare(a[0], b[0]));
        for (let i = 1; i < entries.length; i++) {
          if (entries[i][0].equals(entries[i - 1][0])) {
            throw new DiskwrightError('DUPLICATE_ENTRY', `${n.path.toString()} holds two entries named ${entries[i][0].toString()}; a NAR directory needs unique names`, { path: n.path.toString() });
          }
        }
        for (const [name, child] of entries) {
          this.str(T.entry);
          this.str(T.open);
          this.str(T.name);
          this.str(name);
          this.str(T.node);
          this.node(child());
          this.str(T.close);
        }
        break;
      }
    }
    this.str(T.close);
  }

  finish(): Image {
    this.close();
    return { size: this.size, extents: this.extents };
  }
}

/** The NAR of `node` as an Image (framing in buffers, file bytes as file extents read when emitted). */
export function narImage(node: NarNode): Image {
  const p = new NarPlanner();
  p.str(T.magic);
  p.node(node);
  return p.finish();
}

/** A sink that hands the bytes on in order as chunks, gaps as zeros. */
function chunkSink(take: NarChunkSink): Sink {
  const zeros = Buffer.alloc(4096);
  let pos = 0;
  const gap = (to: number) => {
    for (; pos < to; pos += Math.min(zeros.length, to - pos)) take(zeros.subarray(0, Math.min(zeros.length, to - pos)));
  };
  return {
    write(buf, len, at) {
      gap(at);
      take(buf.subarray(0, len));
      pos = at + len;
    },
    finish(size) {
      gap(size);
    },
  };
}

/** Writes the NAR of `node` to `sink` in chunks; returns its size in bytes. */
export function writeNar(node: NarNode, sink: NarChunkSink): number {
  const image = narImage(node);
  // Progress: narDigest counts these bytes as hashing, across the closure.
  emit(image, chunkSink(sink), null);
  return image.size;
}

export interface NarDigest {
  /** sha256 of the NAR (32 bytes). */
  narHash: Buffer;
  /** Length of the NAR in bytes. */
  narSize: number;
}

/**
 * sha256 and size of the NAR of `node`, in one pass; `also` sees the same
 * bytes (the reference scanner reads the NAR stream, as Nix's does).
 */
export function narDigest(node: NarNode, also?: NarChunkSink): NarDigest {
  const h = createHash('sha256');
  // A closure's size is known only once hashed: progress counts bytes without a total.
  const hashed = tally('hashing', 1 << 20);
  const narSize = writeNar(node, also ? (c) => { h.update(c); hashed.add(c.length); also(c); } : (c) => { h.update(c); hashed.add(c.length); });
  return { narHash: h.digest(), narSize };
}
