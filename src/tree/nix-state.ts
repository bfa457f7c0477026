// Nix's state directory, /nix/var/nix, as a Nix store opened as root leaves
// it after `nix-store --load-db` (LocalStore's constructor makes the
// directories, the big lock, the reserved file and the schema file): the
// database, gcroots/profiles -> /nix/var/nix/profiles, the per-user
// directories, temproots, and any extra roots (gcroots/<dir>/<name> -> store
// path). The per-user directories of the user who ran Nix are left out:
// they belong to the machine that built, not to the image.
import { byteName, type DirEntry, type Entry } from './model.ts';
import { emptyDir } from './contents.ts';
import { madeFile } from './store.ts';
import { nixSchemaFile } from '../nix/db.ts';

/** Nix's default gc-reserved-space: a file it frees to let the collector run on a full disk. */
export const NIX_RESERVED_SIZE = 8 * 2 ** 20;
let reservedBytes: Buffer | undefined;

export interface NixStateOptions {
  /** db.sqlite's bytes (nixDatabase). */
  db: Buffer;
  /** Time of everything made. */
  epoch: number;
  owner: { uid: number; gid: number };
  /** Extra GC roots: gcroots/<dir>/<name> -> target, e.g. nixpkgs' docker/<basename> -> store path. */
  roots?: { dir: string; links: Array<{ name: string; target: string }> };
}

/** A root directory holding nix/var/nix/... (to merge into an image's root). */
export function nixStateTree(o: NixStateOptions): DirEntry {
  const dir = () => emptyDir(o.epoch, o.owner);
  const file = (name: string, content: Buffer, mode: number) => madeFile(`/nix/var/nix/${name}`, content, o.epoch, o.owner, mode);
  const link = (target: string): Entry => ({ type: 'symlink', mode: 0o777, uid: o.owner.uid, gid: o.owner.gid, mtimeSec: o.epoch, mtimeNsec: 0, xattrs: [], target: Buffer.from(target) });
  const put = (d: DirEntry, name: string, e: Entry) => (d.children.set(byteName(name), e), e);

  const state = dir();
  const db = put(state, 'db', dir()) as DirEntry;
  // Modes as Nix creates them: the lock and reserved file 0600, the rest 0644 under umask 022.
  put(db, 'big-lock', file('db/big-lock', Buffer.alloc(0), 0o600));
  put(db, 'db.sqlite', file('db/db.sqlite', o.db, 0o644));
  // Nix allocates it (posix_fallocate), so it holds real blocks that freeing it gives back.
  put(db, 'reserved', file('db/reserved', (reservedBytes ??= Buffer.alloc(NIX_RESERVED_SIZE)), 0o600));
  put(db, 'schema', file('db/schema', nixSchemaFile(), 0o644));
  const gcroots = put(state, 'gcroots', dir()) as DirEntry;
  put(gcroots, 'profiles', link('/nix/var/nix/profiles'));
  put(gcroots, 'per-user', dir());
  if (o.roots) {
    const extra = put(gcroots, o.roots.dir, dir()) as DirEntry;
    for (const r of o.roots.links) put(extra, r.name, link(r.target));
  }
  const profiles = put(state, 'profiles', dir()) as DirEntry;
  put(profiles, 'per-user', dir());
  put(state, 'temproots', dir());

  const root = dir();
  const nix = put(root, 'nix', dir()) as DirEntry;
  const v = put(nix, 'var', dir()) as DirEntry;
  put(v, 'nix', state);
  return root;
}
