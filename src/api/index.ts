// The typed public API.
export { mkfsExt4, planExt4Image, defaultEpoch, type MkfsExt4Options, type MkfsResult } from './mkfs.ts';
export { DiskwrightError, type ErrorCode } from '../errors.ts';
export type { Ext4Stats } from '../fs/ext4/planner.ts';
export { mkfsVfat, planVfatImage, type MkfsVfatOptions, type MkfsVfatResult } from './mkfs.ts';
export type { FatOptions, FatStats } from '../fs/fat/planner.ts';
export type { Image, ImageExtent } from '../image/extent-map.ts';
export { buildImage, planBuild, type BuildInput, type BuildResult, type DiskLayout, type PartitionReport } from './build.ts';
export { defineImage, type ImageConfig, type ImageConfigInput } from '../config/schema.ts';
export { loadConfig, validateConfig } from '../config/load.ts';
export { convertImage, outputChoice, type ConvertOptions, type ConvertResult } from './convert.ts';
export { openImage, detectInput, INPUT_FORMATS, type DiskSource, type InputFormat, type OpenOptions } from '../format/input.ts';
export { inspectImage, type InspectResult, type InspectTable, type InspectPartition, type InspectFilesystem, type InspectExt4, type InspectFat } from './inspect.ts';
export { diffImages, type DiffOptions, type DiffResult, type FieldChange, type PartitionChange, type VolumeChange, type FileChange, type ByteRange } from './diff.ts';
export { extractImage, extractTree, type ExtractOptions, type ExtractResult } from './extract.ts';
export { openVolume, openDisk, parseImageArg, type OpenedVolume, type OpenedDisk, type ImageArg, type ReadOptions } from './volume.ts';
export {
  closure, writeClosureInfo, closureInfoFiles, formatRegistration, parseRegistration, readReferenceSource,
  narHashPath, dumpNar, narDigest, narNodeOfEntry, narNodeOfPath, formatSha256, parseSha256, toNix32, fromNix32,
  type Closure, type ClosureOptions, type StorePathInfo, type GivenPathInfo, type RegistrationFormat, type NarDigest, type NarNode,
} from './nix.ts';
