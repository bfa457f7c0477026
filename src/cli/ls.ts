// `diskwright ls IMAGE[:PART] [PATH] [-l] [-R]`: a directory listing from the
// filesystem readers. -l is ls -l's shape with numeric owners and UTC ISO
// times; -R lists everything below PATH as paths relative to it.
import { Command } from 'commander';
import { openVolume, withInput } from '../api/volume.ts';
import type { FsEntry } from '../read/entry.ts';
import { entryDisplayPath, escapeName, escapePath } from '../read/names.ts';
import { IMAGE_ARG, inputFormatOption, isoTime, warn } from './reading.ts';
import { jsonOption, printJson } from './grammar.ts';
import { lsOutput } from './output-schemas.ts';

const TYPE_CHAR: Record<FsEntry['type'], string> = { file: '-', dir: 'd', symlink: 'l', chr: 'c', blk: 'b', fifo: 'p', sock: 's' };

/** "drwxr-sr-t" from the type and the 07777 bits, as ls -l prints it. */
export function modeString(type: FsEntry['type'], mode: number): string {
  const rwx = (bits: number, special: boolean, lower: string, upper: string) =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? lower : upper) : bits & 1 ? 'x' : '-');
  return (
    TYPE_CHAR[type] +
    rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's', 'S') +
    rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's', 'S') +
    rwx(mode & 7, (mode & 0o1000) !== 0, 't', 'T')
  );
}

/** One entry of `ls --json`: what -l shows, as fields. */
function jsonEntry(e: FsEntry, name: string) {
  return {
    name,
    type: e.type,
    mode: e.mode,
    nlink: e.nlink,
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    mtime: isoTime(e.mtimeSec, e.mtimeNsec),
    ...(e.type === 'symlink' && e.target ? { target: escapePath(e.target.toString('latin1')) } : {}),
    ...(e.type === 'chr' || e.type === 'blk' ? { major: e.major ?? 0, minor: e.minor ?? 0 } : {}),
  };
}

/** The columns of one -l line: mode, links, uid, gid, size (or major, minor), mtime, name [-> target]; `shown`: the name as escaped for display. */
export function longColumns(e: FsEntry, shown: string): string[] {
  const size = e.type === 'chr' || e.type === 'blk' ? `${e.major}, ${e.minor}` : String(e.size);
  shown += e.type === 'symlink' && e.target ? ` -> ${escapePath(e.target.toString('latin1'))}` : '';
  return [modeString(e.type, e.mode), String(e.nlink), String(e.uid), String(e.gid), size, isoTime(e.mtimeSec, e.mtimeNsec), shown];
}

function align(rows: string[][]): string[] {
  const w: number[] = [];
  for (const r of rows) r.forEach((c, i) => (w[i] = Math.max(w[i] ?? 0, c.length)));
  // Numbers right-aligned, the rest left-aligned; the name is last and not padded.
  const right = new Set([1, 2, 3, 4]);
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : right.has(i) ? c.padStart(w[i]) : c.padEnd(w[i]))).join(' '));
}

export function lsCommand(): Command {
  return new Command('ls')
    .description('list a directory (or one entry) of a filesystem inside an image')
    .argument('<image>', IMAGE_ARG)
    .argument('[path]', 'path inside the filesystem', '/')
    .option('-l, --long', 'long format: mode, links, uid, gid, size, mtime (UTC), name -> target')
    .option('-R, --recursive', 'everything below PATH, as paths relative to it')
    .addOption(inputFormatOption())
    .addOption(jsonOption())
    .action((image: string, path: string, o: { long?: boolean; recursive?: boolean; inputFormat?: string; json?: boolean }) => {
      const vol = openVolume(image, { inputFormat: o.inputFormat });
      try {
        warn(vol.warnings);
        const r = vol.fs;
        const rows: Array<{ e: FsEntry; name: string }> = [];
        withInput(vol.what, () => {
          const top = r.lookup(path);
          // Names as escaped text: control bytes, bytes that are not UTF-8, and a '/' inside a name (from a hostile image) show as \xNN.
          if (top.type !== 'dir') rows.push({ e: top, name: escapePath(Buffer.from(path, 'utf8').toString('latin1')) });
          else if (o.recursive) {
            for (const e of r.walk(top)) if (e !== top && e.path !== top.path) rows.push({ e, name: entryDisplayPath(e, top.path) });
          } else {
            for (const e of r.readdir(top)) rows.push({ e, name: escapeName(e.name) });
          }
        });
        if (o.json) return printJson(lsOutput, { entries: rows.map(({ e, name }) => jsonEntry(e, name)) });
        const out = o.long ? align(rows.map(({ e, name }) => longColumns(e, name))) : rows.map(({ name }) => name);
        if (out.length) process.stdout.write(out.join('\n') + '\n');
      } finally {
        vol.close();
      }
    });
}
