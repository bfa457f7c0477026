// `diskwright nar hash PATH...` and `diskwright nar dump PATH [-o FILE]`.
import { Command, Option } from 'commander';
import { dumpNar, formatSha256, narHashPath, type HashFormat } from '../api/nix.ts';
import { writeFileAtomically } from '../format/atomic-file.ts';
import { fileSink, streamSink, type Sink } from '../format/raw.ts';
import { deprecated, deprecatedOption, jsonOption, outputOption, printJson, streamOption } from './grammar.ts';
import { narHashOutput } from './output-schemas.ts';

const ENCODINGS = ['nix32', 'base16', 'sri'] as const;

export function narCommand(): Command {
  const nar = new Command('nar').description('Nix archives: hash or write the NAR of a path');
  nar
    .command('hash')
    .description('print the NAR hash of each PATH as nix-store -q --hash does (sha256:<nix base-32>)')
    .argument('<path...>', 'files, directories or symlinks (store paths or anything else)')
    .addOption(new Option('--encoding <encoding>', 'hash encoding').choices(ENCODINGS).default('nix32'))
    // --format names the image format everywhere else: the old spelling of --encoding.
    .addOption(deprecatedOption('--format <encoding>').choices(ENCODINGS))
    .option('--size', 'also print the NAR size in bytes, after the hash')
    .addOption(jsonOption())
    .action((paths: string[], o: { encoding: HashFormat; format?: HashFormat; size?: boolean; json?: boolean }) => {
      if (o.format !== undefined) deprecated('nar hash --format', '--encoding');
      const encoding = o.format ?? o.encoding;
      const hashes = paths.map((p) => {
        const d = narHashPath(p);
        return { path: p, narHash: formatSha256(d.narHash, encoding), narSize: d.narSize };
      });
      if (o.json) return printJson(narHashOutput, { paths: hashes });
      process.stdout.write(hashes.map((h) => h.narHash + (o.size ? ` ${h.narSize}` : '')).join('\n') + '\n');
    });
  nar
    .command('dump')
    .description('write the NAR of PATH, as nix-store --dump does')
    .argument('<path>', 'file, directory or symlink')
    .addOption(outputOption("NAR file to write, or '-' for standard output (the default)").default('-'))
    .addOption(streamOption('the NAR'))
    .action((p: string, o: { output: string; stream?: boolean }) => {
      if (o.stream) o.output = '-';
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
