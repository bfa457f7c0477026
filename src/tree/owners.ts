// User and group names resolve through the image's own /etc/passwd and
// /etc/group, as `nixos-enter -- chown` does in make-disk-image, never
// through the build machine's.
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import { byteName, ID_MAX, type DirEntry, type Entry } from './model.ts';

/** Follows a path inside the tree, resolving symlinks against the image root. */
export function lookup(root: DirEntry, imagePath: string, hops = 0): Entry | undefined {
  const parts = imagePath.split('/').filter((p) => p !== '' && p !== '.');
  const names: string[] = []; // the resolved path so far
  const dirs: DirEntry[] = [root];
  let cur: Entry = root;
  for (let i = 0; i < parts.length; i++) {
    if (parts[i] === '..') {
      if (names.length) { names.pop(); dirs.pop(); }
      cur = dirs[dirs.length - 1];
      continue;
    }
    if (cur.type !== 'dir') return undefined;
    const next: Entry | undefined = cur.children.get(byteName(parts[i]));
    if (!next) return undefined;
    if (next.type === 'symlink') {
      if (hops >= 40) return undefined;
      const target = next.target.toString('utf8');
      const base = target.startsWith('/') ? target : `/${[...names, target].join('/')}`;
      const rest = parts.slice(i + 1).join('/');
      return lookup(root, rest ? `${base}/${rest}` : base, hops + 1);
    }
    names.push(parts[i]);
    if (next.type === 'dir') dirs.push(next);
    cur = next;
  }
  return cur;
}

export interface IdTables {
  users: Map<string, number>;
  groups: Map<string, number>;
}

function readIdFile(root: DirEntry, file: string): Map<string, number> {
  const ids = new Map<string, number>();
  const e = lookup(root, file);
  if (!e || e.type !== 'file') return ids;
  const text = (e.content ?? fs.readFileSync(e.sourcePath)).toString('utf8');
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && /^\d+$/.test(f[2]) && !ids.has(f[0])) ids.set(f[0], Number(f[2]));
  }
  return ids;
}

export function idTables(root: DirEntry): IdTables {
  return { users: readIdFile(root, '/etc/passwd'), groups: readIdFile(root, '/etc/group') };
}


/** A user or group given by name or number; `what` names the setting for errors. */
export function resolveId(value: string | number, table: Map<string, number>, kind: 'user' | 'group', what: string): number {
  const file = kind === 'user' ? '/etc/passwd' : '/etc/group';
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const id = Number(value);
    if (!Number.isInteger(id) || id < 0 || id > ID_MAX) {
      throw new DiskwrightError('CONTENTS_INVALID', `${what}.${kind} ${value}: ext4 stores ${kind === 'user' ? 'uids' : 'gids'} from 0 to ${ID_MAX}; give one in that range`, { kind, value });
    }
    return id;
  }
  const id = table.get(value);
  if (id === undefined) {
    throw new DiskwrightError('OWNER_UNKNOWN', `${what}: ${kind} "${value}" is not in the image's ${file}; add it there or give a number`, { name: value, kind });
  }
  if (id > ID_MAX) {
    throw new DiskwrightError('CONTENTS_INVALID', `${what}.${kind} "${value}": the image's ${file} gives it id ${id}, above ${ID_MAX}, the largest ext4 stores; fix that line of ${file}`, { name: value, kind });
  }
  return id;
}
