// `diskwright inspect IMAGE [--json]`: rendering only; the figures come from src/api/inspect.ts.
import { Command } from 'commander';
import { inspectImage, type InspectFilesystem, type InspectResult } from '../api/inspect.ts';
import { formatSize } from '../util/sizes.ts';
import { IMAGE_ARG, inputFormatOption, warn } from './reading.ts';
import { jsonOption, printJson } from './grammar.ts';
import { inspectOutput } from './output-schemas.ts';

const size = (n: number) => `${formatSize(n)} (${n} bytes)`;

function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd());
}

function fsLines(f: InspectFilesystem): string[] {
  const where = f.partition === null ? 'filesystem' : `partition ${f.partition}`;
  const lines = [`${where}: ${f.type} label "${f.label}" ${f.type.startsWith('fat') ? 'volume ID' : 'UUID'} ${f.uuid}, ${size(f.size)}`];
  const unit = f.type.startsWith('fat') ? 'clusters' : 'blocks';
  lines.push(`  ${unit}: ${f.blocks} of ${f.blockSize} bytes, ${f.usedBlocks} used, ${f.freeBlocks} free (${formatSize(f.freeBlocks * f.blockSize)})`);
  if (f.inodes !== undefined) lines.push(`  inodes: ${f.inodes}, ${f.usedInodes} used, ${f.freeInodes} free`);
  if (f.features.length) lines.push(`  features: ${f.features.join(' ')}`);
  if (f.ext4) {
    const e = f.ext4;
    lines.push(`  hash seed: ${e.hashSeed} (default hash ${e.defaultHash}${e.flags.length ? `, ${e.flags.join(' ')}` : ''})`);
    lines.push(`  inode size ${e.inodeSize}, ${e.groups} groups of ${e.blocksPerGroup} blocks and ${e.inodesPerGroup} inodes, ${e.reservedBlocks} reserved blocks`);
    lines.push(`  created ${e.created ?? 'never'}, last write ${e.lastWrite ?? 'never'}, last mount ${e.lastMount ?? 'never'}, last check ${e.lastCheck ?? 'never'}`);
    lines.push(`  state ${e.state}, mounted ${e.mountCount} times (max ${e.maxMountCount}), revision ${e.revision}`);
    if (e.journal) lines.push(`  journal: inode ${e.journal.inode}, ${e.journal.blocks} blocks of ${e.journal.blockSize} bytes, sequence ${e.journal.sequence}`);
  }
  if (f.fat) {
    const t = f.fat;
    lines.push(`  FAT${t.fatType}, volume ID ${t.volumeId}, cluster ${t.clusterSize} bytes (${t.sectorsPerCluster} sectors of ${t.bytesPerSector}), OEM name "${t.oemName.replace(/ +$/, '')}", media ${t.media}`);
    lines.push(`  ${t.reservedSectors} reserved sectors, ${t.fats} FATs of ${t.sectorsPerFat} sectors at byte ${t.fatOffset}, root directory at byte ${t.rootDirOffset}${t.rootEntries ? ` (${t.rootEntries} entries)` : ''}, data at byte ${t.dataOffset}`);
    lines.push(`  ${t.totalSectors} sectors total, ${t.hiddenSectors} hidden${t.badClusters ? `, ${t.badClusters} bad clusters` : ''}${t.fsinfoFree !== undefined ? `, FSInfo free count ${t.fsinfoFree === 0xffffffff ? 'unknown' : t.fsinfoFree}` : ''}`);
  }
  return lines;
}

export function renderInspect(r: InspectResult): string[] {
  const lines = [`${r.path}: ${r.description}`];
  lines.push(`virtual size: ${size(r.virtualSize)}`);
  lines.push(`file size: ${size(r.fileSize)}, ${size(r.allocatedSize)} allocated on disk`);
  if (r.dataSize !== null) lines.push(`data stored: ${size(r.dataSize)}${r.compressedClusters ? `, ${r.compressedClusters} compressed clusters` : ''}`);
  const t = r.table;
  if (!t) lines.push('partition table: none');
  else {
    const id = t.diskGuid ? `disk GUID ${t.diskGuid}` : `disk signature ${t.diskSignature}`;
    const usable = t.firstUsableLba !== undefined ? `, usable LBA ${t.firstUsableLba}..${t.lastUsableLba}` : '';
    lines.push(`partition table: ${t.kind.toUpperCase()}, ${id}, ${t.sectorSize}-byte sectors${usable}${t.gptCopy === 'backup' ? ' (read from the backup GPT)' : ''}`);
    const gpt = t.kind !== 'mbr';
    const rows = [['#', 'start', 'size', 'type', ...(gpt ? ['name', 'GUID'] : []), 'flags']];
    for (const p of t.partitions) {
      const flags = [...(p.bootable ? ['bootable'] : []), ...p.attributeNames, ...(p.extended ? ['extended'] : []), ...(p.logical ? ['logical'] : [])];
      if (p.mbrType && t.kind === 'hybrid') flags.push(`MBR type ${p.mbrType}`);
      rows.push([
        String(p.number),
        `${p.startLba} (${formatSize(p.start)})`,
        `${p.sectors} (${formatSize(p.size)})`,
        `${p.typeName} (${p.type})`,
        ...(gpt ? [p.name ? JSON.stringify(p.name) : '""', p.guid ?? '-'] : []),
        flags.join(' ') || '-',
      ]);
    }
    lines.push(...table(rows).map((l) => `  ${l}`));
  }
  for (const f of r.filesystems) lines.push(...fsLines(f));
  const v = r.efiVariables;
  if (v) {
    lines.push(`EFI variables: ${v.variables.length} (${v.deleted} deleted), ${v.freeBytes} of ${v.storeSize} bytes free${v.authenticated ? ', authenticated store' : ''}`);
    for (const x of v.variables) {
      const what = x.bootOption ? `: "${x.bootOption.description}" ${x.bootOption.path}${x.bootOption.attributes & 1 ? '' : ' (inactive)'}` : x.bootOrder ? `: ${x.bootOrder.join(',')}` : '';
      lines.push(`  ${x.name} ${x.guid} attributes ${x.attributes}, ${x.dataSize} bytes${what}`);
    }
  }
  return lines;
}

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('show an image\'s format, sizes, partition table and filesystems')
    .argument('<image>', IMAGE_ARG)
    .addOption(jsonOption())
    .addOption(inputFormatOption())
    .action((image: string, o: { json?: boolean; inputFormat?: string }) => {
      const r = inspectImage(image, { inputFormat: o.inputFormat });
      warn(r.warnings);
      if (o.json) printJson(inspectOutput, r);
      else process.stdout.write(renderInspect(r).join('\n') + '\n');
    });
}
