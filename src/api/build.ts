// `diskwright build CONFIG`: a whole disk image from one config, the way
// nixpkgs' make-disk-image lays it out. Trees first (root, contents, owners
// by name, boot partition files), then each filesystem planned and placed in
// its partition, then the table; one extent map for the whole disk.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import { defaultEpoch } from './mkfs.ts';
import type { ImageConfig } from '../config/schema.ts';
import type { DirEntry } from '../tree/model.ts';
import type { Image } from '../image/extent-map.ts';
import type { WriteResult } from '../format/raw.ts';
import { checkOutput, extension, productType, writeOutput, type Format } from '../format/output.ts';
import { compileDisk, type BlobReport, type PartitionReport } from '../disk/compile.ts';
import { buildTree } from '../disk/content.ts';
import { makeDiskImageSpec } from '../disk/presets/make-disk-image.ts';
import { customSpec, rawBlobsOf } from '../disk/presets/custom.ts';
import { firmwareTooSmall } from '../disk/presets/sd-image.ts';
import { writeSmallFile } from '../format/atomic-file.ts';
import { contributeBoot, planBoot, withToplevelRoot } from '../boot/install.ts';
import { EFI_VARS_FILE, efiVarsFile, planEfiVars } from '../boot/touch-efi-vars.ts';
import { contributeNixosFiles, planConfigFile } from '../boot/config-file.ts';
import { refuseUnusedExtras } from '../boot/systemd-boot-extra.ts';

export type { FsReport, PartitionReport, BlobReport } from '../disk/compile.ts';

export interface DiskLayout {
  image: string;
  format: Format;
  compress: ImageConfig['compress'];
  size: number;
  /** The make-disk-image layout, or `custom` (partitions) or the preset's name (sd-image). */
  partitionTableType: ImageConfig['partitionTableType'] | 'custom' | 'sd-image';
  table: 'mbr' | 'gpt' | 'hybrid' | 'none';
  diskGuid?: string;
  diskSignature?: string;
  partitions: PartitionReport[];
  /** Raw blobs written at byte offsets; absent when there are none. */
  blobs?: BlobReport[];
}

export interface BuildPlan {
  disk: Image;
  layout: DiskLayout;
  /** touchEFIVars: the bytes of OUTDIR/efi-vars.fd. */
  efiVars?: Buffer;
}

export interface BuildInput {
  config: ImageConfig;
  /** Keys the config set itself: a given rootGPUID stays even when not deterministic. */
  given: Set<string>;
  baseDir: string;
  /** The config file as the user named it, for errors. */
  file?: string;
}

/** The root filesystem's tree of a build config (root, store, contents, owners). */
export function rootTree(cfg: ImageConfig, baseDir: string, epoch: number, config?: string): DirEntry {
  return buildTree(cfg, baseDir, epoch, 'contents', config);
}

/** The config's epoch, else SOURCE_DATE_EPOCH (refused if not a time ext4 stores), else 1. */
export function buildEpoch(cfg: Pick<ImageConfig, 'epoch'>): number {
  return cfg.epoch ?? defaultEpoch();
}

/** config -> preset -> disk spec -> compiler. */
export function planBuild(input: BuildInput): BuildPlan {
  const epoch = buildEpoch(input.config);
  checkOutput({ format: input.config.format, compress: input.config.compress, level: input.config.compressLevel, seed: input.config.seed, epoch });
  // The system to boot is read before the closure is hashed: its mistakes are cheap to report.
  const boot = planBoot(input.config, input.baseDir);
  const efiVars = planEfiVars(input.config, input.baseDir);
  const configFile = planConfigFile(input.config, input.baseDir);
  if (!boot?.extras) refuseUnusedExtras(input.config);
  const cfg = withToplevelRoot(input.config, boot);
  const preset = { ...input, config: cfg, epoch };
  let spec;
  if (cfg.partitions) {
    spec = customSpec(preset);
    if (cfg.preset === 'sd-image') {
      const fw = spec.partitions[0];
      const [key, mib] = ['firmwareSize', fw.size! / 2 ** 20];
      fw.key = key;
      fw.role = 'firmware';
      spec.partitions[1].role = 'root';
      fw.tooSmall = (need) => firmwareTooSmall(mib, need);
    }
  }
  else {
    spec = makeDiskImageSpec(preset);
    spec.rawBlobs = rawBlobsOf(cfg.rawBlobs, input.baseDir);
  }
  if (boot) contributeBoot(spec, boot, cfg, epoch);
  contributeNixosFiles(spec, configFile, boot !== undefined && boot.loader !== 'none', epoch);
  const c = compileDisk(spec);
  const layout: DiskLayout = {
    image: `${cfg.baseName}.${extension(cfg)}`,
    format: cfg.format,
    compress: cfg.compress,
    size: c.size,
    partitionTableType: cfg.preset ?? (cfg.partitions ? 'custom' : cfg.partitionTableType),
    table: c.table,
    diskGuid: c.diskGuid,
    diskSignature: c.diskSignature,
    partitions: c.partitions,
    blobs: c.blobs.length ? c.blobs : undefined,
  };
  return { disk: c.disk, layout, efiVars: efiVars && efiVarsFile(efiVars, cfg, spec, c.partitions) };
}

export interface BuildResult extends BuildPlan {
  imagePath: string;
  write: WriteResult;
  /** OUTDIR/efi-vars.fd, with touchEFIVars. */
  efiVarsPath?: string;
}

/** Plans and writes OUTDIR/<baseName>.img, nix-support/hydra-build-products and layout.json. */
export function buildImage(input: BuildInput & { outDir: string }): BuildResult {
  const plan = planBuild(input);
  const outDir = path.resolve(input.outDir);
  if (fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory()) {
    throw new DiskwrightError('OUTPUT_IS_DIR', `output ${input.outDir} exists and is not a directory; give a directory (default ./result)`, {});
  }
  const imagePath = path.join(outDir, plan.layout.image);
  const cfg = input.config;
  const write = writeOutput(plan.disk, { format: cfg.format, compress: cfg.compress, level: cfg.compressLevel, seed: cfg.seed, epoch: buildEpoch(cfg) }, imagePath)!;
  // The image is complete: the small files follow, each written whole.
  // sd-image.nix names its product sd-image.
  const product = cfg.preset === 'sd-image' ? 'sd-image' : productType(cfg);
  writeSmallFile(path.join(outDir, 'nix-support', 'hydra-build-products'), 'build products list', `file ${product} ${imagePath}\n`);
  writeSmallFile(path.join(outDir, 'layout.json'), 'layout', JSON.stringify(plan.layout, null, 2) + '\n');
  const efiVarsPath = plan.efiVars && path.join(outDir, EFI_VARS_FILE);
  if (efiVarsPath) writeSmallFile(efiVarsPath, 'EFI variable store', plan.efiVars!);
  return { ...plan, imagePath, write, efiVarsPath };
}
