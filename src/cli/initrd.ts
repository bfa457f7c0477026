// `diskwright initrd SOURCE... -o OUT`: option parsing and the summary only.
import { Command, Option } from 'commander';
import { defaultEpoch } from '../api/mkfs.ts';
import { DiskwrightError } from '../errors.ts';
import { INITRD_COMPRESSIONS, MTIME_MODES, writeInitrd, type InitrdCompression, type MtimeMode } from '../archive/initrd.ts';
import { loadInitrdConfig } from '../config/initrd.ts';
import { compressLevelOption, jsonOption, outputOption, printJson, streamOption, uint } from './grammar.ts';
import { initrdOutput } from './output-schemas.ts';

function invalid(message: string): never {
  throw new DiskwrightError('OPTION_INVALID', message, {});
}

export function initrdCommand(): Command {
  return new Command('initrd')
    .description('write an initramfs: a cpio newc archive of the merged SOURCE directories (later ones win), owners root, times the epoch')
    .argument('[source...]', 'directories whose contents become the archive root')
    .addOption(outputOption("archive file to write, or '-' for standard output"))
    .addOption(streamOption('the archive'))
    .option('--config <file>', 'JSON/YAML/TOML/TS file with sources, makeInitrd contents [{object, symlink}], compressor...')
    .addOption(new Option('--compress <method>', 'compress the archive (default none)').choices(INITRD_COMPRESSIONS))
    .addOption(compressLevelOption('gzip 1-9 (default 9), zstd 1-19 (default 10), xz 0-9 (default 6)'))
    .option('--epoch <seconds>', 'member times (default: SOURCE_DATE_EPOCH, else 1)')
    .addOption(new Option('--mtime <mode>', "'epoch': every time is the epoch (default); 'clamp': the source's, at most the epoch; 'source'").choices(MTIME_MODES))
    .option('--owner <uid:gid>', 'owner of every member (default 0:0)')
    .option('--keep-owners', "keep the source files' owners")
    .option('--store-dir <dir>', "where the contents' store paths are on this machine (default: the nix store dir)")
    .option('--nix-store-dir <dir>', 'the store directory the paths are named under (default /nix/store)')
    .option('--references-from <file>', 'references from a closureInfo dir, registration or nix path-info --json output (default: scan)')
    .addOption(jsonOption())
    .action(async (sources: string[], o: Record<string, string | boolean | undefined>) => {
      if (o.stream) o.output = '-';
      if (o.output === undefined) invalid("no output given; add -o FILE for the archive, or --stream (or -o -) for standard output");
      const cfg = o.config !== undefined ? await loadInitrdConfig(String(o.config)) : undefined;
      let owner: { uid: number; gid: number } | 'source' | undefined;
      if (o.keepOwners && o.owner !== undefined) invalid('--owner and --keep-owners contradict each other; give one');
      if (o.keepOwners) owner = 'source';
      if (o.owner !== undefined) {
        const m = /^(\d+):(\d+)$/.exec(String(o.owner));
        if (!m) invalid(`--owner ${o.owner}: give numeric UID:GID such as 0:0`);
        owner = { uid: uint('--owner uid', m[1], 0xffffffff), gid: uint('--owner gid', m[2], 0xffffffff) };
      }
      const str = (v: unknown) => (v === undefined ? undefined : String(v));
      const compress = (o.compress as InitrdCompression | undefined) ?? cfg?.compressor ?? 'none';
      const { stats, write } = writeInitrd({
        sources: [...(cfg?.sources ?? []), ...sources],
        contents: cfg?.contents,
        baseDir: cfg?.baseDir,
        output: String(o.output),
        compress,
        compressLevel: o.compressLevel !== undefined ? uint('--compress-level', String(o.compressLevel), 19) : cfg?.compressLevel,
        epoch: o.epoch !== undefined ? uint('--epoch', String(o.epoch), 0xffffffff) : cfg?.epoch ?? defaultEpoch(),
        mtime: (o.mtime as MtimeMode | undefined) ?? cfg?.mtime,
        owner,
        storeDir: str(o.storeDir) ?? cfg?.storeDir,
        nixStoreDir: str(o.nixStoreDir) ?? cfg?.nixStoreDir,
        storeReferences: str(o.referencesFrom) ?? cfg?.storeReferences,
      });
      if (o.json) return printJson(initrdOutput, { ...stats, compress, output: write ? { path: String(o.output), ...write } : null }, o.output === '-');
      const lines = [`cpio newc: ${stats.members} members (${stats.files} files with data), ${stats.bytes} bytes uncompressed`];
      if (write) lines.push(`wrote ${o.output}: ${write.apparentBytes} bytes`);
      process.stderr.write(lines.join('\n') + '\n');
    });
}
