// A FileTree as a tar stream, and the stream as an Image: headers are buffer
// extents, file data are file extents (holes of sparse files stay gaps that
// read as zero), so the one emitter, the compressors, the hashing sink and the
// atomic writer serve archives as they serve disks. Members go in the order
// `tar --sort=name` gives (depth first, names bytewise in each directory);
// later names of one inode become hard links (typeflag 1) to the first.
import { DiskwrightError } from '../errors.ts';
import { finishImage, type Image, type ImageExtent } from '../image/extent-map.ts';
import type { DirEntry, Entry } from '../tree/model.ts';
import { encodeMember, padding, tarMember, END_OF_ARCHIVE_LENGTH, type MemberType, type TarMember } from './tar.ts';

/** nix2container's perms: metadata for `path` and what is under it, or only for what `regex` matches there. */
export interface PermRule {
  /** Absolute path in the archive's tree, e.g. /nix/store/...-app or /etc. */
  path: string;
  /** Matched (unanchored, as nix2container's Go regexp) against the member's absolute path. */
  regex?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
}

export interface TarImageOptions {
  /** Every member's owner; unset fields keep the tree's ids and leave names empty. */
  owner?: { uid?: number; gid?: number; uname?: string; gname?: string };
  /** Names for members owned by these ids (after `owner`): a member of another uid or gid gets an empty name. */
  names?: { uid: number; gid: number; uname: string; gname: string };
  /** Every member's mtime (seconds); default the tree's. */
  mtime?: number;
  /** Prepended to every member name, e.g. 'rootfs/'. */
  prefix?: string;
  /** Applied in order after `owner`; later rules win. */
  perms?: PermRule[];
  /** End with the two zero blocks (default true); false to concatenate more members after. */
  end?: boolean;
}

export interface TarImage {
  image: Image;
  /** Members written, in archive order. */
  members: number;
  /** Sockets, which tar cannot hold (GNU tar skips them too). */
  skipped: Buffer[];
  /** Indexes of `perms` rules that matched no member: the caller warns. */
  unmatchedPerms: number[];
}

const SLASH = Buffer.from('/');
const TYPE: Record<Exclude<Entry['type'], 'sock'>, MemberType> = { file: 'file', dir: 'dir', symlink: 'symlink', chr: 'chr', blk: 'blk', fifo: 'fifo' };

/** Every entry under `root` (not `root` itself) as a tar archive. */
export function tarImage(root: DirEntry, opts: TarImageOptions = {}): TarImage {
  const rules = (opts.perms ?? []).map((r, i) => compileRule(r, i));
  const matched = new Set<number>();
  const extents: ImageExtent[] = [];
  const skipped: Buffer[] = [];
  const firstName = new Map<string, Buffer>();
  const prefix = Buffer.from(opts.prefix ?? '');
  let at = 0;
  let members = 0;
  const put = (b: Buffer) => {
    extents.push({ offset: at, length: b.length, buffer: b });
    at += b.length;
  };
  const visit = (dir: DirEntry, parent: Buffer) => {
    const names = [...dir.children.keys()].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
    for (const key of names) {
      const e = dir.children.get(key)!;
      // `path`: within the tree, for perms; `name`: in the archive.
      const path = Buffer.concat([parent, Buffer.from(key, 'latin1')]);
      if (e.type === 'sock') {
        skipped.push(path);
        continue;
      }
      const name = Buffer.concat(e.type === 'dir' ? [prefix, path, SLASH] : [prefix, path]);
      const m = memberOf(e, name, opts);
      for (const r of rules) if (r.applies(path)) { r.apply(m); matched.add(r.index); }
      const first = e.type !== 'dir' && e.linkKey !== undefined ? firstName.get(e.linkKey) : undefined;
      if (first) {
        put(encodeMember({ ...m, type: 'hardlink', linkname: first, size: 0 }));
      } else {
        if (e.type !== 'dir' && e.linkKey !== undefined) firstName.set(e.linkKey, name);
        put(encodeMember(m));
        if (e.type === 'file' && e.size > 0) putData(e);
      }
      members++;
      if (e.type === 'dir') visit(e, Buffer.concat([path, SLASH]));
    }
  };
  const putData = (e: Extract<Entry, { type: 'file' }>) => {
    if (e.content) {
      put(e.content);
    } else if (e.runs) {
      for (const r of e.runs) extents.push({ offset: at + r.offset, length: r.length, path: e.sourcePath, fileOffset: r.offset, expectSize: e.size });
      at += e.size;
    } else {
      extents.push({ offset: at, length: e.size, path: e.sourcePath, fileOffset: 0, expectSize: e.size });
      at += e.size;
    }
    at += padding(e.size);
  };
  visit(root, Buffer.alloc(0));
  if (opts.end ?? true) at += END_OF_ARCHIVE_LENGTH;
  const unmatchedPerms = rules.map((r) => r.index).filter((i) => !matched.has(i));
  return { image: finishImage(at, extents), members, skipped, unmatchedPerms };
}

function memberOf(e: Exclude<Entry, { type: 'sock' }>, name: Buffer, opts: TarImageOptions): TarMember {
  const o = opts.owner ?? {};
  const uid = o.uid ?? e.uid;
  const gid = o.gid ?? e.gid;
  const n = opts.names;
  return tarMember(name, {
    type: TYPE[e.type as Exclude<Entry['type'], 'sock'>],
    mode: e.mode,
    uid,
    gid,
    uname: o.uname ?? (n && uid === n.uid ? n.uname : ''),
    gname: o.gname ?? (n && gid === n.gid ? n.gname : ''),
    size: e.type === 'file' ? e.size : 0,
    mtimeSec: opts.mtime ?? e.mtimeSec,
    mtimeNsec: opts.mtime === undefined ? e.mtimeNsec : 0,
    linkname: e.type === 'symlink' ? e.target : Buffer.alloc(0),
    devmajor: e.type === 'chr' || e.type === 'blk' ? e.major : 0,
    devminor: e.type === 'chr' || e.type === 'blk' ? e.minor : 0,
    ...(e.xattrs.length ? { xattrs: e.xattrs } : {}),
  });
}

function compileRule(r: PermRule, index: number) {
  const base = Buffer.from(r.path.replace(/^\/+/, '').replace(/\/+$/, ''));
  let re: RegExp | undefined;
  if (r.regex !== undefined) {
    try {
      re = new RegExp(r.regex, 'u');
    } catch {
      throw new DiskwrightError('CONFIG_INVALID', `perms[${index}].regex ${JSON.stringify(r.regex)} is not a valid regular expression; fix its syntax`, { index });
    }
  }
  return {
    index,
    // `rel`: the member's path in the tree, without a leading or trailing '/'.
    applies(rel: Buffer): boolean {
      const under = base.length === 0 || (rel.subarray(0, base.length).equals(base) && (rel.length === base.length || rel[base.length] === 0x2f));
      if (!under) return false;
      return re === undefined || re.test('/' + rel.toString('utf8'));
    },
    apply(m: TarMember): void {
      if (r.mode !== undefined) m.mode = r.mode & 0o7777;
      if (r.uid !== undefined) m.uid = r.uid;
      if (r.gid !== undefined) m.gid = r.gid;
      if (r.uname !== undefined) m.uname = r.uname;
      if (r.gname !== undefined) m.gname = r.gname;
    },
  };
}
