// Library entry points for `diskwright mkfs ext4` and `mkfs vfat`.
import { scanSources } from '../tree/scan.ts';
import { DiskwrightError } from '../errors.ts';
import { hasStore, withStore, type StoreOptions } from './store.ts';
import { planExt4, type Ext4Options, type Ext4Stats } from '../fs/ext4/planner.ts';
import { planFat, type FatOptions, type FatStats } from '../fs/fat/planner.ts';
import type { WriteResult } from '../format/raw.ts';
import { checkOutput, checkTarget, writeOutput, type Compression, type Format } from '../format/output.ts';
import type { Image } from '../image/extent-map.ts';

/** How a bare filesystem is written: format, compression (raw only), level. */
export interface OutputChoice {
  format?: Format;
  compress?: Compression;
  compressLevel?: number;
}

export interface MkfsExt4Options extends Omit<Ext4Options, 'size'>, OutputChoice, StoreOptions {
  /** Directories merged into the image root; later ones win (may be empty with storePaths). */
  sources: string[];
  /** Output file, or '-' for standard output. */
  output: string;
  size?: number | 'auto';
  /** Force every entry's owner. */
  owner?: { uid: number; gid: number };
  /** Clamp file mtimes to the epoch. */
  clampMtime?: boolean;
}

export interface MkfsResult {
  stats: Ext4Stats;
  write?: WriteResult;
}

/** Plans an ext4 image of the sources without writing it. */
export function planExt4Image(opts: Omit<MkfsExt4Options, 'output'>): { image: Image; stats: Ext4Stats } {
  const epoch = opts.epoch ?? 1;
  const clampMtime = opts.clampMtime ? epoch : undefined;
  if (!opts.sources.length && !hasStore(opts)) {
    throw new DiskwrightError('SOURCE_MISSING', 'no source directory and no store path given; name at least one', {});
  }
  const tree = opts.sources.length ? scanSources(opts.sources, { owner: opts.owner, clampMtime }) : undefined;
  // Relative store roots resolve against the working directory, as sources do.
  const root = withStore(tree, opts, process.cwd(), epoch, opts.owner, clampMtime)!;
  // make-disk-image's default label for a store-only filesystem.
  const label = opts.label ?? (opts.onlyNixStore ? 'nix-store' : undefined);
  return planExt4(root, { ...opts, label, epoch, size: opts.size ?? 'auto' });
}

export function mkfsExt4(opts: MkfsExt4Options): MkfsResult {
  checkChosen(opts);
  const { image, stats } = planExt4Image(opts);
  return { stats, write: writeChosen(image, opts) };
}

function outputOptions(o: OutputChoice & { seed?: string; epoch?: number }) {
  return { format: o.format ?? 'raw', compress: o.compress, level: o.compressLevel, seed: o.seed ?? 'diskwright', epoch: o.epoch ?? 1 };
}

/** Refuses a bad output choice (level, a format that cannot stream to '-') before any planning. */
function checkChosen(o: OutputChoice & { output: string; seed?: string; epoch?: number }): void {
  const out = outputOptions(o);
  checkOutput(out);
  checkTarget(out, o.output);
}

function writeChosen(image: Image, o: OutputChoice & { output: string; seed?: string; epoch?: number }): WriteResult | undefined {
  return writeOutput(image, outputOptions(o), o.output);
}

// In a module of their own, so convert loads them without the planners.
export { MAX_EPOCH, defaultEpoch } from './epoch.ts';


// ---------------------------------------------------------------- vfat

export interface MkfsVfatOptions extends Omit<FatOptions, 'size'>, OutputChoice {
  /** Directories merged into the image root; later ones win. */
  sources: string[];
  /** Output file, or '-' for standard output. */
  output: string;
  size?: number | 'auto';
}

export interface MkfsVfatResult {
  stats: FatStats;
  write?: WriteResult;
}

/** Plans a FAT image of the sources without writing it. */
export function planVfatImage(opts: Omit<MkfsVfatOptions, 'output'>): { image: Image; stats: FatStats } {
  const epoch = opts.epoch ?? 1;
  // FAT keeps no owners; the planner clamps times itself (clampMtime).
  const root = scanSources(opts.sources);
  return planFat(root, { ...opts, epoch, size: opts.size ?? 'auto' });
}

/** `diskwright mkfs vfat`: a bare FAT12/16/32 filesystem holding the sources. */
export function mkfsVfat(opts: MkfsVfatOptions): MkfsVfatResult {
  checkChosen(opts);
  const { image, stats } = planVfatImage(opts);
  return { stats, write: writeChosen(image, opts) };
}
