// A source tree with every file type tar holds (devices, fifo, sparse file,
// hard links, long names, odd owners and times), and a walk that records
// what an archive must keep of it, for comparing a tree with its round trip.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from '../oracle/tools.ts';

const LONG = 'l'.repeat(120) + '/' + 'm'.repeat(140);

/** A tree with every type tar holds, made in `order` so two copies differ in creation order and inode numbers. */
export function makeSource(dir: string, order: 'forward' | 'reverse'): void {
  const steps: Array<() => void> = [
    () => fs.mkdirSync(path.join(dir, 'bin'), { mode: 0o755 }),
    () => fs.mkdirSync(path.join(dir, 'etc/ssl'), { recursive: true }),
    () => fs.mkdirSync(path.join(dir, LONG), { recursive: true }),
    () => fs.mkdirSync(path.join(dir, 'dev')),
  ];
  const after: Array<() => void> = [
    () => fs.writeFileSync(path.join(dir, 'bin/tool'), Buffer.alloc(3 << 20, 0x5a), { mode: 0o755 }),
    () => fs.writeFileSync(path.join(dir, 'bin/empty'), ''),
    () => fs.writeFileSync(path.join(dir, 'etc/ssl/cert.pem'), 'certificate\n'),
    () => fs.writeFileSync(path.join(dir, 'etc/h\u00e9llo'), 'unicode\n'),
    () => fs.writeFileSync(path.join(dir, LONG, 'deep-file'), 'deep\n'),
    () => fs.symlinkSync('../etc/ssl/cert.pem', path.join(dir, 'bin/cert')),
    () => fs.symlinkSync('/' + 't'.repeat(200), path.join(dir, 'bin/longlink')),
    () => run('mkfifo', [path.join(dir, 'dev/fifo')]),
    () => run('mknod', [path.join(dir, 'dev/null'), 'c', '1', '3']),
    () => run('mknod', [path.join(dir, 'dev/loop9'), 'b', '7', '9']),
    () => {
      // Sparse: data, a 2 MiB hole, data.
      const fd = fs.openSync(path.join(dir, 'etc/sparse'), 'w');
      fs.writeSync(fd, 'head', 0);
      fs.writeSync(fd, 'tail', 2 << 20);
      fs.closeSync(fd);
    },
  ];
  const links = [() => fs.linkSync(path.join(dir, 'bin/tool'), path.join(dir, 'etc/tool-link')), () => fs.linkSync(path.join(dir, 'bin/tool'), path.join(dir, 'bin/tool2'))];
  const seq = order === 'forward' ? [...steps, ...after, ...links] : [...steps, ...after.reverse(), ...links.reverse()];
  for (const s of seq) s();
  fs.chmodSync(path.join(dir, 'bin/tool'), 0o4755);
  fs.chmodSync(path.join(dir, 'etc/ssl'), 0o700);
  fs.lchownSync(path.join(dir, 'etc/ssl/cert.pem'), 1000, 100);
  fs.lchownSync(path.join(dir, 'bin/cert'), 3_000_000, 5);
  // Times last, deepest first, so making children does not move them.
  const all = walk(dir).map((e) => e.rel).reverse();
  for (const [i, rel] of all.entries()) {
    const t = 1_600_000_000 + i + 0.5;
    fs.lutimesSync(Buffer.concat([Buffer.from(dir + '/'), Buffer.from(rel, 'latin1')]), t, t);
  }
}

export interface Seen {
  rel: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  detail: string;
  /** The first path (in walk order) of the same inode. */
  link: string;
}

/** Every entry under `dir` (not `dir`), depth first in bytewise order, with what tar must keep. */
export function walk(dir: string): Seen[] {
  const out: Seen[] = [];
  const inodes = new Map<bigint, string>();
  // Names as latin1 byte strings, so names that are not UTF-8 survive the walk.
  const at = (rel: string) => Buffer.concat([Buffer.from(dir + '/'), Buffer.from(rel, 'latin1')]);
  const go = (rel: string) => {
    const names = fs.readdirSync(at(rel), { encoding: 'buffer' }).sort(Buffer.compare);
    for (const n of names) {
      const r = rel ? `${rel}/${n.toString('latin1')}` : n.toString('latin1');
      const p = at(r);
      const st = fs.lstatSync(p, { bigint: true });
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'chr' : 'blk';
      const detail =
        type === 'symlink' ? fs.readlinkSync(p) : type === 'file' ? createHash('sha256').update(fs.readFileSync(p)).digest('hex') : type === 'chr' || type === 'blk' ? String(st.rdev) : '';
      const link = type !== 'dir' && st.nlink > 1n ? (inodes.get(st.ino) ?? r) : r;
      if (!inodes.has(st.ino)) inodes.set(st.ino, r);
      out.push({ rel: r, type, mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs, detail, link });
      if (type === 'dir') go(r);
    }
  };
  go('');
  return out;
}

