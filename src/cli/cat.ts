// `diskwright cat IMAGE[:PART] PATH`: a file's bytes to standard output,
// streamed in chunks (holes written as zeros), symlinks inside the image followed.
import { Command } from 'commander';
import { DiskwrightError } from '../errors.ts';
import { openVolume, withInput } from '../api/volume.ts';
import { streamSink } from '../format/raw.ts';
import { childPath, displayKey, type FsEntry, type FsReader, keyParts, pathKey } from '../read/entry.ts';
import { IMAGE_ARG, inputFormatOption, warn } from './reading.ts';

/** The entry at `path`, following symlinks in every component as the kernel would (at most 40). */
export function resolvePath(r: FsReader, path: string | Buffer): FsEntry {
  let pending = keyParts(pathKey(path));
  let cur = r.root();
  let hops = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (cur.type !== 'dir') {
      throw new DiskwrightError('NOT_A_DIRECTORY', `${displayKey(cur.path)} is not a directory`, { path: displayKey(cur.path) });
    }
    const next = r.lookup(Buffer.from(childPath(cur.path, part), 'latin1'));
    if (next.type !== 'symlink') {
      cur = next;
      continue;
    }
    if (++hops > 40) throw new DiskwrightError('PATH_NOT_FOUND', `${displayKey(next.path)}: too many levels of symbolic links`, { path: displayKey(next.path) });
    // Start over from the root with the target in place of the link: absolute targets as they are,
    // relative ones after the link's directory ('..' taken lexically, as the walk only meets directories).
    const target = next.target!.toString('latin1');
    const parts = target.startsWith('/') ? [] : keyParts(cur.path);
    for (const p of target.split('/')) {
      if (p === '' || p === '.') continue;
      if (p === '..') parts.pop();
      else parts.push(p);
    }
    cur = r.root();
    pending = [...parts, ...pending];
  }
  return cur;
}

export function catCommand(): Command {
  return new Command('cat')
    .description('write a file from a filesystem inside an image to standard output')
    .argument('<image>', IMAGE_ARG)
    .argument('<path>', 'file inside the filesystem (symlinks are followed)')
    .addOption(inputFormatOption())
    .action((image: string, path: string, o: { inputFormat?: string }) => {
      const vol = openVolume(image, { inputFormat: o.inputFormat });
      try {
        warn(vol.warnings);
        withInput(vol.what, () => {
          const e = resolvePath(vol.fs, path);
          if (e.type !== 'file') {
            throw new DiskwrightError('NOT_A_FILE', `${displayKey(pathKey(path))} is a ${e.type === 'dir' ? 'directory' : e.type}, not a file; use ls to look inside`, { path });
          }
          // A reader that goes away early ends this quietly (cli/main.ts: status 141).
          const sink = streamSink(1);
          for (const c of vol.fs.chunks(e, { chunkSize: 1 << 20 })) sink.write(c.data, c.data.length, c.offset);
          sink.finish(e.size);
        });
      } finally {
        vol.close();
      }
    });
}
