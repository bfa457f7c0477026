// `diskwright extract IMAGE[:PART] [PATH] DIR`: option parsing and the summary only.
import { Command } from 'commander';
import { DiskwrightError } from '../api/errors.ts';
import { extractImage } from '../api/extract.ts';
import { formatSize } from '../util/sizes.ts';
import { IMAGE_ARG, inputFormatOption, warn } from './reading.ts';

export function extractCommand(): Command {
  return new Command('extract')
    .description('copy a tree out of a filesystem inside an image: contents (holes kept), modes, owners (as root), times, symlinks, hard links, devices, xattrs')
    .argument('<image>', IMAGE_ARG)
    .argument('[path]', 'what to extract: a directory (its contents go into DIR) or one entry (goes into DIR/NAME); default /')
    .argument('[dir]', 'a new or empty directory')
    .addOption(inputFormatOption())
    .option('-q, --quiet', 'no summary')
    .action((image: string, a: string | undefined, b: string | undefined, o: { inputFormat?: string; quiet?: boolean }) => {
      // PATH is optional before the required DIR: with one argument after IMAGE, it is DIR.
      if (a === undefined) throw new DiskwrightError('OPTION_INVALID', 'extract: give the directory to write to: diskwright extract IMAGE[:PART] [PATH] DIR', {});
      const [path, dir] = b === undefined ? ['/', a] : [a, b];
      const r = extractImage(image, path, dir, { inputFormat: o.inputFormat, onWarning: (l) => warn([l]) });
      if (!o.quiet) process.stderr.write(`extracted ${r.entries} entries (${r.files} files, ${formatSize(r.dataBytes)} of data) to ${dir}\n`);
    });
}
