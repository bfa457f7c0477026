// `diskwright nar hash PATH...` and `diskwright nar dump PATH [-o FILE]`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { DiskwrightError } from '../api/errors.ts';
import { dumpNar, formatSha256, narHashPath, type HashFormat } from '../api/nix.ts';
import { streamSink } from '../format/raw.ts';

export function narCommand(): Command {
  const nar = new Command('nar').description('Nix archives: hash or write the NAR of a path');
  nar
    .command('hash')
    .description('print the NAR hash of each PATH as nix-store -q --hash does (sha256:<nix base-32>)')
    .argument('<path...>', 'files, directories or symlinks (store paths or anything else)')
    .addOption(new Option('--format <format>', 'hash encoding').choices(['nix32', 'base16', 'sri']).default('nix32'))
    .option('--size', 'also print the NAR size in bytes, after the hash')
    .action((paths: string[], o: { format: HashFormat; size?: boolean }) => {
      const lines: string[] = [];
      for (const p of paths) {
        const d = narHashPath(p);
        lines.push(formatSha256(d.narHash, o.format) + (o.size ? ` ${d.narSize}` : ''));
      }
      process.stdout.write(lines.join('\n') + '\n');
    });
  nar
    .command('dump')
    .description('write the NAR of PATH, as nix-store --dump does')
    .argument('<path>', 'file, directory or symlink')
    .option('-o, --output <file>', "NAR file to write, or '-' for standard output", '-')
    .action((p: string, o: { output: string }) => {
      if (o.output === '-') {
        const sink = streamSink(1);
        let pos = 0;
        try {
          const size = dumpNar(p, (chunk) => {
            sink.write(chunk, chunk.length, pos);
            pos += chunk.length;
          });
          sink.finish(size);
        } catch (err) {
          // The reader went away (`| head`): stop quietly, as a SIGPIPE would.
          if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
        }
        return;
      }
      writeFileAtomically(o.output, (fd) => {
        dumpNar(p, (chunk) => {
          let done = 0;
          while (done < chunk.length) done += fs.writeSync(fd, chunk, done, chunk.length - done);
        });
      });
    });
  return nar;
}

/** Writes through a temporary name beside `out`, renamed into place when complete. */
function writeFileAtomically(out: string, fill: (fd: number) => void): void {
  if (fs.statSync(out, { throwIfNoEntry: false })?.isDirectory()) {
    throw new DiskwrightError('OUTPUT_IS_DIR', `output ${out} is a directory; give a file name for the NAR`, { path: out });
  }
  const dir = path.dirname(path.resolve(out));
  const tmp = path.join(dir, `.${path.basename(out)}.diskwright-${process.pid}.tmp`);
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'w', 0o644);
  } catch (err) {
    throw new DiskwrightError('OUTPUT_WRITE', `cannot create ${out}: ${(err as NodeJS.ErrnoException).code}; check that ${dir} exists and is writable`, { path: out });
  }
  try {
    try {
      fill(fd);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG' || code === 'EIO') {
        throw new DiskwrightError('OUTPUT_WRITE', `cannot write ${out}: ${code}; free space or choose another output`, { path: out, code });
      }
      throw err;
    }
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, out);
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
