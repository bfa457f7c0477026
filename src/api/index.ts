// The typed public API.
export { mkfsExt4, planExt4Image, defaultEpoch, type MkfsExt4Options, type MkfsResult } from './mkfs.ts';
export { DiskwrightError, type ErrorCode } from './errors.ts';
export type { Ext4Stats } from '../fs/ext4/planner.ts';
export { mkfsVfat, planVfatImage, type MkfsVfatOptions, type MkfsVfatResult } from './mkfs.ts';
export type { FatOptions, FatStats } from '../fs/fat/planner.ts';
export type { Image, ImageExtent } from '../image/extent-map.ts';
export { buildImage, planBuild, type BuildInput, type BuildResult, type DiskLayout, type PartitionReport } from './build.ts';
export { defineImage, type ImageConfig, type ImageConfigInput } from '../config/schema.ts';
export { loadConfig, validateConfig } from '../config/load.ts';
