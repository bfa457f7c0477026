// `diskwright convert IN OUT`: option parsing and the summary only.
import { Command, Option } from 'commander';
import { convertImage } from '../api/convert.ts';
import { DiskwrightError } from '../errors.ts';
import { defaultEpoch, MAX_EPOCH } from '../api/epoch.ts';
import { COMPRESSIONS, FORMATS, type Compression, type Format } from '../format/output.ts';
import { INPUT_FORMATS } from '../format/input.ts';
import { formatSize } from '../util/sizes.ts';
import { compressLevelOption, deprecated, jsonOption, outputOption, printJson, streamOption, uint } from './grammar.ts';

export function convertCommand(): Command {
  return new Command('convert')
    .description('convert a disk image between raw, qcow2, VDI, VHD and compressed raw')
    .argument('<in>', `image to read: ${INPUT_FORMATS.join(', ')} (detected from its contents)`)
    // The output as a second argument: the old spelling of -o.
    .argument('[out]', '(deprecated: use -o OUT)')
    .addOption(outputOption("file to write (its extension picks the format: .img, .qcow2, .vdi, .vhd, .img.zst, .img.xz), or '-' for standard output"))
    .addOption(new Option('--format <format>', 'output format (default: from the extension of OUT; required for -)').choices(FORMATS))
    .addOption(new Option('--compress <method>', 'compress a raw output as it is written (default: from the extension of OUT)').choices(COMPRESSIONS))
    .addOption(compressLevelOption('compression level (zstd 1-19, xz 0-9, qcow2-compressed 1-9)'))
    .option('--input-format <format>', `read IN as this format instead of detecting it (${INPUT_FORMATS.join(', ')}); raw accepts any file`)
    .option('--seed <seed>', 'seed for the ids in the output (VDI and VHD UUIDs)', 'diskwright')
    .option('--epoch <seconds>', 'timestamps in the output (VHD) (default: SOURCE_DATE_EPOCH, else 1)')
    .addOption(streamOption())
    .addOption(jsonOption())
    .action(async (input: string, positional: string | undefined, o: { output?: string; stream?: boolean; format?: Format; compress?: Compression; compressLevel?: string; inputFormat?: string; seed: string; epoch?: string; json?: boolean }) => {
      if (positional !== undefined) {
        if (o.output !== undefined) throw new DiskwrightError('OPTION_INVALID', `convert ${input} ${positional}: the second argument and -o both name the output; give -o only`, {});
        deprecated('convert IN OUT', 'convert IN -o OUT');
      }
      const output = o.stream ? '-' : o.output ?? positional;
      if (output === undefined) {
        throw new DiskwrightError('OPTION_INVALID', `convert ${input}: give -o OUT, the file to write, or --stream (or -o -) for standard output`, {});
      }
      const r = convertImage({
        input,
        output,
        format: o.format,
        compress: o.compress,
        compressLevel: o.compressLevel === undefined ? undefined : uint('--compress-level', o.compressLevel, 19),
        inputFormat: o.inputFormat,
        seed: o.seed,
        epoch: o.epoch === undefined ? defaultEpoch(process.env, MAX_EPOCH) : uint('--epoch', o.epoch, MAX_EPOCH),
      });
      if (o.json) {
        // zod's schemas only for --json: loading them costs a small convert a tenth of its time.
        const { convertOutput } = await import('./output-schemas.ts');
        return printJson(convertOutput, { input: r.input, format: r.format, compress: r.compress, output: r.write ? { path: output, ...r.write } : null }, output === '-');
      }
      const i = r.input;
      const target = r.compress === 'none' ? r.format : `${r.format}, ${r.compress}-compressed`;
      const lines = [`${i.path}: ${i.description}, virtual size ${formatSize(i.size)} (${i.size} bytes), ${formatSize(i.dataBytes)} of data -> ${target}`];
      // The image may be on stdout: the summary always goes to stderr.
      if (r.write) lines.push(`wrote ${output}: ${r.write.apparentBytes} bytes apparent, ${r.write.allocatedBytes} allocated`);
      process.stderr.write(lines.join('\n') + '\n');
    });
}
