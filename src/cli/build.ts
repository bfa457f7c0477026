// `diskwright build CONFIG [-o OUTDIR]`: option parsing and the printed layout only.
import { Command, Option } from 'commander';
import { loadConfig } from '../config/load.ts';
import { buildEpoch, buildImage, planBuild, type DiskLayout } from '../api/build.ts';
import { COMPRESSIONS, FORMATS, checkTarget, writeOutput, type Compression, type Format } from '../format/output.ts';
import { formatSize } from '../util/sizes.ts';
import { DiskwrightError } from '../errors.ts';

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
    .option('-o, --out <dir>', "output directory: <baseName>.img, layout.json, nix-support/; '-' streams the image to standard output", 'result')
    .addOption(new Option('--format <format>', "output format (overrides the config's format)").choices(FORMATS))
    .addOption(new Option('--compress <method>', "compression of a raw image (overrides the config's compress)").choices(COMPRESSIONS))
    .option('--stream', "write the image to standard output (same as -o -)")
    .option('--report', 'also write IMAGE.html beside the image: where its bytes go (see `diskwright report`)')
    .action(async (file: string, o: { out: string; stream?: boolean; format?: Format; compress?: Compression; report?: boolean }) => {
      if (o.stream) o.out = '-';
      if (o.report && o.out === '-') throw new DiskwrightError('OPTION_INVALID', '--report: the image goes to standard output, leaving the report nothing to read; give an output directory with -o', {});
      const loaded = await loadConfig(file);
      const config = { ...loaded.config, format: o.format ?? loaded.config.format, compress: o.compress ?? loaded.config.compress };
      const input = { config, given: loaded.given, baseDir: loaded.baseDir, file };
      if (o.out === '-') {
        // Only the image goes to standard output, in one forward pass; the layout goes to stderr.
        checkTarget(config, '-');
        const plan = planBuild(input);
        if (plan.efiVars) throw new DiskwrightError('CONFIG_INVALID', 'touchEFIVars: the image goes to standard output, leaving efi-vars.fd nowhere to go; give an output directory with -o', {});
        writeOutput(plan.disk, { format: config.format, compress: config.compress, level: config.compressLevel, seed: config.seed, epoch: buildEpoch(config) }, '-');
        process.stderr.write(describeLayout(plan.layout).join('\n') + '\n');
        return;
      }
      const r = buildImage({ ...input, outDir: o.out });
      const lines = describeLayout(r.layout);
      lines.push(`wrote ${r.imagePath}: ${r.write.apparentBytes} bytes apparent, ${r.write.allocatedBytes} allocated`);
      if (r.efiVarsPath) lines.push(`wrote ${r.efiVarsPath}: Boot0001 (systemd-boot) first in BootOrder`);
      if (o.report) lines.push(`wrote ${(await import('../report/report.ts')).writeReportPage(r.imagePath).path}: where the bytes go`);
      process.stderr.write(lines.join('\n') + '\n');
    });
}
