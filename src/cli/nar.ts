// `diskwright nar hash PATH...` and `diskwright nar dump PATH [-o FILE]`.
import { Command, Option } from 'commander';
import { dumpNar, formatSha256, narHashPath, type HashFormat } from '../api/nix.ts';
import { writeFileAtomically } from '../format/atomic-file.ts';
import { fileSink, streamSink, type Sink } from '../format/raw.ts';

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
      const dump = (sink: Sink) => {
        let pos = 0;
        const size = dumpNar(p, (chunk) => {
          sink.write(chunk, chunk.length, pos);
          pos += chunk.length;
        });
        sink.finish(size);
      };
      if (o.output === '-') dump(streamSink(1));
      else writeFileAtomically(o.output, 'NAR', (fd) => dump(fileSink(fd)));
    });
  return nar;
}
