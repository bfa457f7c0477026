// `diskwright build CONFIG [-o OUTDIR]`: option parsing and the printed layout only.
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { loadConfig } from '../config/load.ts';
import { buildEpoch, buildImage, planBuild, type DiskLayout } from '../api/build.ts';
import { COMPRESSIONS, FORMATS, checkTarget, writeOutput, type Compression, type Format } from '../format/output.ts';
import { formatSize } from '../util/sizes.ts';
import { DiskwrightError } from '../errors.ts';
import { compressLevelOption, deprecatedOption, jsonOption, outputOption, pickOutput, printJson, streamOption, uint } from './grammar.ts';
import { buildOutput } from './output-schemas.ts';

const ROLE_NAMES: Record<string, string> = { root: 'root', esp: 'ESP', xbootldr: 'XBOOTLDR', boot: 'boot', bios: 'BIOS boot' };

/** The layout as a few lines: each partition's start, size and type, and each filesystem's free space. */
export function describeLayout(l: DiskLayout): string[] {
  const id = l.diskGuid ? ` disk GUID ${l.diskGuid}` : l.diskSignature ? ` disk signature ${l.diskSignature}` : '';
  const lines = [`${l.image}: ${formatSize(l.size)} (${l.size} bytes), ${l.partitionTableType} layout (${l.table === 'none' ? 'no partition table' : l.table.toUpperCase()})${id}`];
  for (const p of l.partitions) {
    const fs = p.filesystem;
    const fsText = p.prepared
      ? `prepared ${p.prepared.type} image (${formatSize(p.prepared.bytes)})`
      : !fs
      ? 'no filesystem'
      : fs.type === 'ext4'
        ? `ext4 "${fs.label}" ${fs.uuid}: ${formatSize(fs.freeBytes)} free, ${fs.freeInodes} inodes free (${fs.usedInodes} used)`
        : `vfat FAT${fs.fatType} "${fs.label}" ${fs.uuid}: ${formatSize(fs.freeBytes)} free`;
    const num = p.number === null ? '-' : String(p.number);
    lines.push(`  ${num}  start ${formatSize(p.start)} (sector ${p.startSector})  size ${formatSize(p.size)}  ${ROLE_NAMES[p.role] ?? p.role}${p.name ? ` "${p.name}"` : ''}${p.bootable ? ' bootable' : ''}  ${fsText}`);
  }
  for (const b of l.blobs ?? []) lines.push(`  blob  at byte ${b.offset} (${formatSize(b.offset)})  size ${b.size} bytes  ${b.key}: ${b.source}`);
  return lines;
}

export function buildCommand(): Command {
  return new Command('build')
    .description('build a whole disk image (make-disk-image layouts) from a JSON, YAML, TOML or .ts config')
    .argument('<config>', 'config file: .json, .yaml, .toml, or a .ts/.js module exporting defineImage({...})')
    .addOption(outputOption("output directory (default ./result): <baseName>.img, layout.json, nix-support/; '-' streams the image to standard output"))
    .addOption(deprecatedOption('--out <dir>'))
    .addOption(new Option('--format <format>', "output format (overrides the config's format)").choices(FORMATS))
    .addOption(new Option('--compress <method>', "compression of a raw image (overrides the config's compress)").choices(COMPRESSIONS))
    .addOption(compressLevelOption("overrides the config's compressLevel: zstd 1-19 (default 3), xz 0-9 (default 6), qcow2-compressed 1-9 (default 6)"))
    .addOption(streamOption())
    .addOption(jsonOption())
    .option('--report', 'also write IMAGE.html beside the image: where its bytes go (see `diskwright report`)')
    .action(async (file: string, o: { output?: string; out?: string; stream?: boolean; format?: Format; compress?: Compression; compressLevel?: string; json?: boolean; report?: boolean }) => {
      const out = o.stream ? '-' : pickOutput(o.output, o.out, '--out') ?? 'result';
      if (o.report && out === '-') throw new DiskwrightError('OPTION_INVALID', '--report: the image goes to standard output, leaving the report nothing to read; give an output directory with -o', {});
      const loaded = await loadConfig(file);
      const config = {
        ...loaded.config,
        format: o.format ?? loaded.config.format,
        compress: o.compress ?? loaded.config.compress,
        compressLevel: o.compressLevel === undefined ? loaded.config.compressLevel : uint('--compress-level', o.compressLevel, 19),
      };
      const input = { config, given: loaded.given, baseDir: loaded.baseDir, file };
      if (out === '-') {
        // Only the image goes to standard output, in one forward pass; the layout goes to stderr.
        checkTarget(config, '-');
        const plan = planBuild(input);
        if (plan.efiVars) throw new DiskwrightError('CONFIG_INVALID', 'touchEFIVars: the image goes to standard output, leaving efi-vars.fd nowhere to go; give an output directory with -o', {});
        writeOutput(plan.disk, { format: config.format, compress: config.compress, level: config.compressLevel, seed: config.seed, epoch: buildEpoch(config) }, '-');
        if (o.json) printJson(buildOutput, { layout: plan.layout, image: null, files: [] }, true);
        else process.stderr.write(describeLayout(plan.layout).join('\n') + '\n');
        return;
      }
      const r = buildImage({ ...input, outDir: out });
      const reportPath = o.report ? (await import('../report/report.ts')).writeReportPage(r.imagePath).path : undefined;
      if (o.json) {
        const dir = path.resolve(out);
        const files = [r.imagePath, path.join(dir, 'nix-support', 'hydra-build-products'), path.join(dir, 'layout.json'), ...(r.efiVarsPath ? [r.efiVarsPath] : []), ...(reportPath ? [reportPath] : [])];
        printJson(buildOutput, { layout: r.layout, image: { path: r.imagePath, ...r.write }, files });
        return;
      }
      const lines = describeLayout(r.layout);
      lines.push(`wrote ${r.imagePath}: ${r.write.apparentBytes} bytes apparent, ${r.write.allocatedBytes} allocated`);
      if (r.efiVarsPath) lines.push(`wrote ${r.efiVarsPath}: Boot0001 (systemd-boot) first in BootOrder`);
      if (reportPath) lines.push(`wrote ${reportPath}: where the bytes go`);
      process.stderr.write(lines.join('\n') + '\n');
    });
}
