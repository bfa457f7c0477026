// Contents lists ({source, target, mode, user, group}), with make-disk-image's
// rules: a directory source becomes the target (rsync `src/ target`), a file
// source is copied to the target, a source with `*` copies every match into
// the target directory, an existing target is a "duplicate entry". Modes apply
// as rsync's --chmod does; owners are set afterwards by name through the
// image's own /etc/passwd, as make-disk-image's `chown -R` in the image does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import { byteName, placeholderDirs, type DirEntry, type Entry } from './model.ts';
import { mergeDir, scanPath } from './scan.ts';
import { expandGlob, hasGlob } from './glob.ts';
import { idTables, lookup, resolveId } from './owners.ts';

export interface ContentSpec {
  source: string;
  target: string;
  mode?: string;
  user?: string | number;
  group?: string | number;
}

export interface ContentsOptions {
  /** The setting's name, for errors: `contents`, `espContents`... */
  what: string;
  /** The config file the list comes from, for errors. */
  config?: string;
  /** Names go to FAT (limit: 255 UTF-16 units) rather than ext4 (255 bytes). */
  fat?: boolean;
  /** Relative sources resolve against this directory (the config file's). */
  baseDir: string;
  /** Time of directories made to hold targets. */
  epoch: number;
  /** Owner of everything copied (before user/group); undefined keeps the source's. */
  owner?: { uid: number; gid: number };
  clampMtime?: number;
}

/** An empty directory as `mkdir -p` makes it in a root-owned image (a placeholder: see mergeDir). */
export function emptyDir(epoch: number, owner = { uid: 0, gid: 0 }): DirEntry {
  const d: DirEntry = { type: 'dir', mode: 0o755, uid: owner.uid, gid: owner.gid, mtimeSec: epoch, mtimeNsec: 0, xattrs: [], children: new Map() };
  placeholderDirs.add(d);
  return d;
}

function contentsError(code: 'CONTENTS_INVALID' | 'SOURCE_MISSING' | 'DUPLICATE_ENTRY', message: string): never {
  throw new DiskwrightError(code, message, {});
}

/** `config FILE: contents[i]`: where a list entry is, for errors. */
export function entryWhere(opts: Pick<ContentsOptions, 'what' | 'config'>, i: number): string {
  return `${opts.config ? `config ${opts.config}: ` : ''}${opts.what}[${i}]`;
}

/** The longest name ext4 and FAT store: 255 bytes (ext4) or UTF-16 units (FAT). */
const NAME_MAX = 255;

/**
 * `/a/b/c` -> ['a', 'b', 'c'], refusing relative paths, `.`/`..` components
 * and names the filesystem cannot hold. `key` names the setting in the
 * refusals of names (`config FILE: contents[2].target`).
 */
export function targetParts(target: string, where: string, key = `${where}.target`, fat = false): string[] {
  if (typeof target !== 'string' || !target.startsWith('/')) {
    contentsError('CONTENTS_INVALID', `${where}: target "${target}" is not an absolute path; write it as /path/in/the/image`);
  }
  const parts = target.split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '.' || p === '..')) {
    contentsError('CONTENTS_INVALID', `${where}: target "${target}" contains "." or ".."; give the plain absolute path`);
  }
  for (const p of parts) {
    if (p.includes('\0')) {
      contentsError('CONTENTS_INVALID', `${key} ${JSON.stringify(target)}: the name ${JSON.stringify(p)} holds a NUL byte, which no file name can; remove it`);
    }
    const len = fat ? p.length : Buffer.byteLength(p);
    if (len > NAME_MAX) {
      throw new DiskwrightError('NAME_TOO_LONG', `${key}: the name ${JSON.stringify(p.slice(0, 16) + '...')} is ${len} ${fat ? 'UTF-16 units' : 'bytes'}; ${fat ? 'FAT' : 'ext4'} names hold at most ${NAME_MAX}: shorten it`, { key, length: len });
    }
  }
  return parts;
}

/** rsync --chmod: "0644" for everything, or "D0755,F0644" for directories and files apart. */
export function parseMode(mode: string, where: string): { dir?: number; file?: number } {
  const out: { dir?: number; file?: number } = {};
  for (const item of String(mode).split(',')) {
    const m = /^([DF]?)([0-7]{3,4})$/.exec(item.trim());
    if (!m) contentsError('CONTENTS_INVALID', `${where}: mode "${mode}" is not an octal mode; write it like "0644" or "D0755,F0644"`);
    const bits = parseInt(m[2], 8);
    if (m[1] !== 'F') out.dir = bits;
    if (m[1] !== 'D') out.file = bits;
  }
  return out;
}

function chmodTree(e: Entry, mode: { dir?: number; file?: number }): void {
  if (e.type === 'symlink') return; // rsync leaves link modes alone
  const bits = e.type === 'dir' ? mode.dir : mode.file;
  if (bits !== undefined) e.mode = bits;
  if (e.type === 'dir') for (const c of e.children.values()) chmodTree(c, mode);
}

function chownTree(e: Entry, uid: number, gid: number): void {
  e.uid = uid;
  e.gid = gid;
  if (e.type === 'dir') for (const c of e.children.values()) chownTree(c, uid, gid);
}

/** Walks to the directory `parts`, making missing ones; a non-directory in the way is an error. */
function mkdirP(root: DirEntry, parts: string[], opts: ContentsOptions, where: string): DirEntry {
  let dir = root;
  for (const p of parts) {
    const key = byteName(p);
    let next = dir.children.get(key);
    if (!next) {
      next = emptyDir(opts.epoch);
      dir.children.set(key, next);
    }
    if (next.type !== 'dir') contentsError('CONTENTS_INVALID', `${where}: /${parts.join('/')} needs a directory where a ${next.type} already is; change the target`);
    dir = next;
  }
  return dir;
}

function sourceKind(abs: string): 'dir' | 'other' | 'missing' {
  try {
    return fs.statSync(abs).isDirectory() ? 'dir' : 'other';
  } catch {
    try {
      fs.lstatSync(abs);
      return 'other'; // a dangling symlink is copied as a link
    } catch {
      return 'missing';
    }
  }
}

/** The tree a contents list describes, rooted at an empty `/`; owners by name come later. */
export function contentsTree(entries: ContentSpec[], opts: ContentsOptions, root: DirEntry = emptyDir(opts.epoch)): DirEntry {
  entries.forEach((spec, i) => {
    const where = entryWhere(opts, i);
    if ((spec.user === undefined) !== (spec.group === undefined)) {
      contentsError('CONTENTS_INVALID', `${where}: set both user and group, or neither (as make-disk-image requires)`);
    }
    const parts = targetParts(spec.target, where, `${where}.target`, opts.fat);
    const mode = spec.mode !== undefined ? parseMode(spec.mode, where) : undefined;
    const scan = { owner: opts.owner, clampMtime: opts.clampMtime, linkScope: `${opts.what}[${i}]:` };
    const absSource = path.resolve(opts.baseDir, spec.source);

    if (hasGlob(spec.source)) {
      const matches = expandGlob(absSource);
      if (matches.length === 0) contentsError('SOURCE_MISSING', `${where}: source ${spec.source} matches nothing; check the pattern`);
      const dir = mkdirP(root, parts, opts, where);
      for (const m of matches) {
        const e = scanPath(m, scan);
        if (mode) chmodTree(e, mode);
        place(dir, byteName(path.basename(m)), e);
      }
      return;
    }

    const kind = sourceKind(absSource);
    if (kind === 'missing') contentsError('SOURCE_MISSING', `${where}: source ${spec.source} does not exist; give an existing file or directory`);
    const merge = kind === 'dir' && spec.source.endsWith('/');
    if (parts.length === 0) {
      if (kind !== 'dir') contentsError('CONTENTS_INVALID', `${where}: only a directory can go to target /`);
      const e = scanPath(absSource, { ...scan, followTop: true }) as DirEntry;
      if (mode) chmodTree(e, mode);
      if (!merge && root.children.size) contentsError('DUPLICATE_ENTRY', `${where}: duplicate entry / -> ${spec.source}`);
      Object.assign(root, mergeDir(root, e));
      placeholderDirs.delete(root); // `/` now has the source's metadata
      return;
    }
    const parent = mkdirP(root, parts.slice(0, -1), opts, where);
    const key = byteName(parts[parts.length - 1]);
    const old = parent.children.get(key);
    if (old && !(merge && old.type === 'dir')) {
      contentsError('DUPLICATE_ENTRY', `${where}: duplicate entry ${spec.target} -> ${spec.source}; each target may appear once (end a directory source with / to merge into it)`);
    }
    const e = scanPath(absSource, { ...scan, followTop: true });
    if (mode) chmodTree(e, mode);
    place(parent, key, e);
  });
  return root;
}

/**
 * Refuses a target whose way down passes through something in `base` (the
 * tree the contents go over: root, the store) that is not a directory:
 * merging would silently replace that symlink or file with a directory.
 */
export function checkTargetParents(base: DirEntry, entries: ContentSpec[], opts: Pick<ContentsOptions, 'what' | 'config' | 'fat'>): void {
  entries.forEach((spec, i) => {
    const where = entryWhere(opts, i);
    const parts = targetParts(spec.target, where, `${where}.target`, opts.fat);
    // A glob's matches go into the target: all of it is their way down.
    const way = hasGlob(spec.source) ? parts : parts.slice(0, -1);
    let dir = base;
    for (let k = 0; k < way.length; k++) {
      const e = dir.children.get(byteName(way[k]));
      if (!e) return;
      if (e.type === 'dir') {
        dir = e;
        continue;
      }
      const at = `/${way.slice(0, k + 1).join('/')}`;
      if (e.type === 'symlink') {
        const real = path.posix.resolve(path.posix.dirname(at), e.target.toString(), ...parts.slice(k + 1));
        contentsError('CONTENTS_INVALID', `${where}.target ${JSON.stringify(spec.target)}: ${at} is a symlink to ${e.target.toString()} already in the image, and a target cannot pass through one; write the real path, ${real}`);
      }
      contentsError('CONTENTS_INVALID', `${where}.target ${JSON.stringify(spec.target)}: ${at} is a ${e.type === 'file' ? 'file' : e.type} already in the image, not a directory; change the target`);
    }
  });
}

function place(dir: DirEntry, key: string, e: Entry): void {
  const old = dir.children.get(key);
  dir.children.set(key, old && old.type === 'dir' && e.type === 'dir' ? mergeDir(old, e) : e);
}

/** `chown -R user:group target` for each entry that names owners, in list order, resolved in `root`. */
export function applyOwners(root: DirEntry, entries: ContentSpec[], what: string, config?: string): void {
  const todo = entries.map((s, i) => ({ s, i })).filter(({ s }) => s.user !== undefined);
  if (!todo.length) return;
  const tables = idTables(root);
  for (const { s, i } of todo) {
    const where = entryWhere({ what, config }, i);
    const uid = resolveId(s.user!, tables.users, 'user', where);
    const gid = resolveId(s.group!, tables.groups, 'group', where);
    const e = lookup(root, s.target);
    if (e) chownTree(e, uid, gid);
  }
}
