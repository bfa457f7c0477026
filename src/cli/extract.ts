// `diskwright extract IMAGE[:PART] [PATH] DIR`: option parsing and the summary only.
import { Command } from 'commander';
import { DiskwrightError } from '../errors.ts';
import { extractImage } from '../api/extract.ts';
import { formatSize } from '../util/sizes.ts';
import { IMAGE_ARG, inputFormatOption, warn } from './reading.ts';
import { EXIT, setExitStatus } from './status.ts';
import { jsonOption, outputOption, printJson } from './grammar.ts';
import { extractOutput } from './output-schemas.ts';

export function extractCommand(): Command {
  return new Command('extract')
    .description('copy a tree out of a filesystem inside an image: contents (holes kept), modes, owners (as root), times, symlinks, hard links, devices, xattrs; entries whose names cannot be host file names are skipped with a warning (exit status 1)')
    .argument('<image>', IMAGE_ARG)
    .argument('[path]', 'what to extract: a directory (its contents go into DIR) or one entry (goes into DIR/NAME); default /')
    .argument('[dir]', 'a new or empty directory; a new one appears only when everything is written')
    .addOption(outputOption('DIR, given as an option: then the one argument after IMAGE is PATH'))
    .addOption(inputFormatOption())
    .option('--strict', 'stop at the first entry whose name cannot be a host file name (a new DIR is then not created)')
    .option('-q, --quiet', 'no summary')
    .addOption(jsonOption())
    .action((image: string, a: string | undefined, b: string | undefined, o: { output?: string; inputFormat?: string; quiet?: boolean; strict?: boolean; json?: boolean }) => {
      if (o.output !== undefined && b !== undefined) throw new DiskwrightError('OPTION_INVALID', `extract: DIR given twice (${b} and -o ${o.output}); give one`, {});
      // PATH is optional before the required DIR: with one argument after IMAGE, it is DIR (unless -o names DIR).
      if (a === undefined && o.output === undefined) throw new DiskwrightError('OPTION_INVALID', 'extract: give the directory to write to: diskwright extract IMAGE[:PART] [PATH] DIR, or -o DIR', {});
      const [path, dir] = o.output !== undefined ? [a ?? '/', o.output] : b === undefined ? ['/', a!] : [a!, b];
      const r = extractImage(image, path, dir, { inputFormat: o.inputFormat, strict: o.strict, onWarning: (l) => warn([l]) });
      const skipped = r.skipped.length ? `; ${r.skipped.length} skipped for their names (see the warnings)` : '';
      if (o.json) printJson(extractOutput, { dir, entries: r.entries, files: r.files, dataBytes: r.dataBytes, warnings: r.warnings, skipped: r.skipped });
      else if (!o.quiet) process.stderr.write(`extracted ${r.entries} entries (${r.files} files, ${formatSize(r.dataBytes)} of data) to ${dir}${skipped}\n`);
      // Everything else is written, but the tree is not the image's: fail as a script would want.
      if (r.skipped.length) setExitStatus(EXIT.error);
    });
}
