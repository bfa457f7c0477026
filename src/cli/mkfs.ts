// `diskwright mkfs ext4|vfat SOURCE... -o OUT`: option parsing and the summary only.
import { Command, Option } from 'commander';
import { defaultEpoch, MAX_EPOCH, mkfsExt4, mkfsVfat } from '../api/mkfs.ts';
import type { WriteResult } from '../format/raw.ts';
import { COMPRESSIONS, FORMATS, type Compression, type Format } from '../format/output.ts';
import { DiskwrightError } from '../errors.ts';
import { parseSize, formatSize } from '../util/sizes.ts';
import { parseUuid, formatUuid } from '../util/ids.ts';
import { EXT4_MAX_TIME } from '../fs/ext4/inode.ts';
import { compressLevelOption, jsonOption, outputOption, printJson, streamOption, uint } from './grammar.ts';
import { mkfsOutput } from './output-schemas.ts';

function invalid(message: string): never {
  throw new DiskwrightError('OPTION_INVALID', message, {});
}

/** -o FILE, -o - or --stream: exactly one place for the image. */
function outputOf(o: Record<string, unknown>): string {
  if (o.stream) return '-';
  if (o.output === undefined) invalid("no output given; add -o FILE for the image, or --stream (or -o -) for standard output");
  return String(o.output);
}

function collect(v: string, acc: string[]): string[] {
  return [...acc, v];
}

/** The options every bare filesystem takes: sources, output, size, free space, epoch. */
function bareFsCommand(parent: Command, name: string, description: string, sizeExample: string): Command {
  return parent
    .command(name)
    .description(description)
    .argument('[source...]', 'directories to copy into the image root')
    .addOption(outputOption("image file to write, or '-' for standard output"))
    .addOption(streamOption())
    .option('--size <bytes>', `'auto' (smallest that fits) or a size such as ${sizeExample} (IEC: M = MiB)`, 'auto')
    .option('--free <bytes>', 'free space to leave with --size auto (IEC)', '0')
    .addOption(new Option('--format <format>', 'output format').choices(FORMATS).default('raw'))
    .addOption(new Option('--compress <method>', 'compress a raw image as it is written (.zst, .xz)').choices(COMPRESSIONS).default('none'))
    .addOption(compressLevelOption('zstd 1-19 (default 3), xz 0-9 (default 6), qcow2-compressed 1-9 (default 6)'))
    .addOption(jsonOption());
}

/** `maxEpoch`: the latest time the filesystem stores. */
function commonValues(o: Record<string, string | boolean | string[] | undefined>, maxEpoch: number) {
  const size: number | 'auto' = o.size === 'auto' ? 'auto' : parseSize(String(o.size)) ?? invalid(`--size ${o.size}: give 'auto' or a size such as 4096, 512M or 2G`);
  const freeBytes = parseSize(String(o.free)) ?? invalid(`--free ${o.free}: give a size such as 0, 64M or 1G`);
  const epoch = o.epoch !== undefined ? uint('--epoch', String(o.epoch), maxEpoch) : defaultEpoch(process.env, maxEpoch);
  return {
    size, freeBytes, epoch, output: outputOf(o), clampMtime: Boolean(o.clampMtime),
    format: o.format as Format, compress: o.compress as Compression, compressLevel: o.compressLevel === undefined ? undefined : uint('--compress-level', String(o.compressLevel), 19),
  };
}

/** The written image for --json: null when it went to standard output. */
function written(output: string, write?: WriteResult) {
  return write ? { path: output, ...write } : null;
}

/** The image may be on stdout: the summary always goes to stderr. */
function summary(lines: string[], output: string, write?: WriteResult): void {
  if (write) lines.push(`wrote ${output}: ${write.apparentBytes} bytes apparent, ${write.allocatedBytes} allocated`);
  process.stderr.write(lines.join('\n') + '\n');
}

export function mkfsCommand(): Command {
  const mkfs = new Command('mkfs').description('build a bare filesystem image');
  bareFsCommand(mkfs, 'ext4', 'build an ext4 image whose root holds the merged SOURCE directories (later ones win)', '512M')
    .option('--free-inodes <n>', 'free inodes to leave with --size auto', '0')
    .option('--label <label>', 'volume label (at most 16 bytes)')
    .option('--uuid <uuid>', 'filesystem UUID (default: derived from the seed)')
    .option('--seed <seed>', 'seed for every id not given (UUID, hash seed)', 'diskwright')
    .option('--owner <uid:gid>', 'force the owner of every entry')
    .option('--epoch <seconds>', 'filesystem times (default: SOURCE_DATE_EPOCH, else 1)')
    .option('--clamp-mtime', 'clamp file mtimes to the epoch')
    .option('--inode-size <bytes>', 'inode size: 256, 512 or 1024', '256')
    .addOption(new Option('--journal', 'write an empty journal sized as mke2fs would (default)').default(true))
    .option('--no-journal', 'no journal')
    .option('--reserved-percent <pct>', 'blocks reserved for root, in percent', '0')
    .option('--store-path <path>', 'a closure root (store path or ./result); its closure goes to /nix/store (repeatable)', collect, [])
    .option('--only-nix-store', 'the store objects are the filesystem root (make-disk-image onlyNixStore)')
    .option('--nix-path-registration <path>', 'where the registration goes in the image', '/nix-path-registration')
    .option('--no-nix-path-registration', 'write no registration')
    .option('--store-dir <dir>', "where the store paths' files are on this machine (default: the nix store dir)")
    .option('--nix-store-dir <dir>', 'the store directory the paths are named under', '/nix/store')
    .option('--references-from <file>', 'references from a closureInfo dir, registration, nix-store --dump-db or nix path-info --json output (default: scan)')
    .action((sources: string[], o: Record<string, string | boolean | string[] | undefined>) => {
      const common = commonValues(o, EXT4_MAX_TIME);
      let uuid: Buffer | undefined;
      if (o.uuid !== undefined) {
        uuid = parseUuid(String(o.uuid)) ?? undefined;
        if (!uuid) throw new DiskwrightError('UUID_INVALID', `--uuid ${o.uuid} is not a UUID; use the form 01234567-89ab-cdef-0123-456789abcdef`, {});
      }
      let owner: { uid: number; gid: number } | undefined;
      if (o.owner !== undefined) {
        const m = /^(\d+):(\d+)$/.exec(String(o.owner));
        if (!m) invalid(`--owner ${o.owner}: give numeric UID:GID such as 0:0`);
        owner = { uid: uint('--owner uid', m[1], 0xffffffff), gid: uint('--owner gid', m[2], 0xffffffff) };
      }
      const reserved = Number(o.reservedPercent);
      if (!(reserved >= 0 && reserved <= 50)) invalid(`--reserved-percent ${o.reservedPercent}: give a number from 0 to 50`);
      const { stats, write } = mkfsExt4({
        sources,
        ...common,
        freeInodes: uint('--free-inodes', String(o.freeInodes)),
        label: o.label as string | undefined,
        uuid,
        seed: String(o.seed),
        owner,
        inodeSize: uint('--inode-size', String(o.inodeSize), 65536),
        journal: o.journal !== false,
        reservedPercent: reserved,
        storePaths: o.storePath as string[],
        onlyNixStore: Boolean(o.onlyNixStore),
        nixPathRegistration: o.nixPathRegistration === false ? false : String(o.nixPathRegistration),
        storeDir: o.storeDir as string | undefined,
        nixStoreDir: String(o.nixStoreDir),
        storeReferences: o.referencesFrom as string | undefined,
      });
      if (o.json) {
        const { uuid: id, ...figures } = stats;
        const doc = { filesystem: 'ext4' as const, ...figures, freeBytes: stats.freeBlocks * stats.blockSize, uuid: formatUuid(id), output: written(common.output, write) };
        return printJson(mkfsOutput, doc, common.output === '-');
      }
      const lines = [
        `ext4 ${formatSize(stats.bytes)} (${stats.bytes} bytes, ${stats.blocks} blocks of ${stats.blockSize}) uuid ${formatUuid(stats.uuid)}${stats.label ? ` label ${stats.label}` : ''}`,
        `blocks: ${stats.usedBlocks} used, ${stats.freeBlocks} free; inodes: ${stats.usedInodes} used, ${stats.freeInodes} free; journal ${stats.journalBlocks} blocks`,
      ];
      summary(lines, common.output, write);
    });
  bareFsCommand(mkfs, 'vfat', 'build a FAT12/16/32 image (VFAT long names) whose root holds the merged SOURCE directories (later ones win)', '256M')
    .option('--label <label>', 'volume label (at most 11 ASCII characters)')
    .option('--volume-id <hex>', 'volume ID, 8 hex digits (default: derived from the seed)')
    .option('--seed <seed>', 'seed for every id not given (volume ID)', 'diskwright')
    .option('--epoch <seconds>', 'time of the volume label (default: SOURCE_DATE_EPOCH, else 1)')
    .option('--clamp-mtime', 'clamp file mtimes to the epoch')
    .option('--fat-type <bits>', '12, 16 or 32 (default: FAT32 where the size allows it, else FAT16, else FAT12)')
    .action((sources: string[], o: Record<string, string | boolean | undefined>) => {
      const common = commonValues(o, MAX_EPOCH);
      let volumeId: number | undefined;
      if (o.volumeId !== undefined) {
        const v = String(o.volumeId).replace(/^0x/i, '').replace('-', '');
        if (!/^[0-9a-f]{1,8}$/i.test(v)) invalid(`--volume-id ${o.volumeId}: give 8 hex digits such as 1234ABCD or 1234-ABCD`);
        volumeId = parseInt(v, 16);
      }
      let fatType: 12 | 16 | 32 | undefined;
      if (o.fatType !== undefined) {
        if (!['12', '16', '32'].includes(String(o.fatType))) invalid(`--fat-type ${o.fatType}: use 12, 16 or 32`);
        fatType = Number(o.fatType) as 12 | 16 | 32;
      }
      const { stats, write } = mkfsVfat({
        sources,
        ...common,
        label: o.label as string | undefined,
        volumeId,
        seed: String(o.seed),
        fatType,
      });
      const id = stats.volumeId.toString(16).toUpperCase().padStart(8, '0');
      if (o.json) {
        const doc = { filesystem: 'vfat' as const, ...stats, volumeId: `${id.slice(0, 4)}-${id.slice(4)}`, output: written(common.output, write) };
        return printJson(mkfsOutput, doc, common.output === '-');
      }
      const lines = [
        `FAT${stats.fatType} ${formatSize(stats.bytes)} (${stats.bytes} bytes, ${stats.clusters} clusters of ${stats.clusterBytes}) volume-id ${id.slice(0, 4)}-${id.slice(4)}${stats.label ? ` label ${stats.label}` : ''}`,
        `clusters: ${stats.usedClusters} used, ${stats.freeClusters} free (${stats.freeBytes} bytes); ${stats.files} files, ${stats.dirs} directories`,
      ];
      summary(lines, common.output, write);
    });
  return mkfs;
}
