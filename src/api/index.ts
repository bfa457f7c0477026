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

// Building from data and writing anywhere: plan from a config object or a
// FileTree, get the Image back, write it to a path, a Writable or as chunks.
export { planImage, type PlanOptions } from './plan.ts';
export type { BuildPlan } from './build.ts';
export { writeImage, imageChunks, type WriteOptions, type ImageTarget } from './write.ts';
export type { WriteResult } from '../format/raw.ts';
export type { ProgressEvent, ProgressPhase, ProgressListener } from '../util/progress.ts';

// The pipeline's stages (DESIGN.md), for programs that compose their own.
// Sources -> FileTree:
export { scanSources, scanPath, mergeDir, type ScanOptions } from '../tree/scan.ts';
export type { Entry, EntryType, DirEntry, FileEntry, SymlinkEntry, DeviceEntry, SpecialEntry, DataRun, Xattr } from '../tree/model.ts';
// FileTree -> Volume (filesystem planners):
export { planExt4, type Ext4Options, type Ext4Plan } from '../fs/ext4/planner.ts';
export { planFat, type FatPlan } from '../fs/fat/planner.ts';
// Disk spec -> Disk (the compiler; make-disk-image's layouts as a preset):
export { compileDisk, type CompiledDisk, type FsReport, type BlobReport } from '../disk/compile.ts';
export type { DiskSpec, DiskPartition, PartitionContent, Ext4Content, VfatContent, ImageContent, RawBlob, TableKind } from '../disk/spec.ts';
export { makeDiskImageSpec, type PresetInput } from '../disk/presets/make-disk-image.ts';
// Extent maps:
export { finishImage, sliceExtent, isFileExtent, isLazyExtent, type BufferExtent, type FileExtent, type LazyExtent } from '../image/extent-map.ts';
export { composeDisk } from '../image/compose.ts';
// Format transforms (Disk -> the output file's extent map) and compressors:
export { encodeOutput, FORMATS, COMPRESSIONS, type Format, type Compression, type OutputOptions } from '../format/output.ts';
export { toQcow2, readQcow2, type Qcow2Options } from '../format/qcow2.ts';
export { toVdi, readVdi } from '../format/vdi.ts';
export { toVhdDynamic, toVhdFixed, readVhd, type IdOptions } from '../format/vhd.ts';
export { compressSink, zstdSink, xzSink, gzipSink } from '../format/compress.ts';
// The emitter and its sinks:
export { emit, emitAsync, fileSink, streamSink, sequentialSink, writeImageFile, dataBytes, type Sink } from '../format/raw.ts';
export { hashingSink, digestImage, type HashingSink } from '../format/hash-sink.ts';
// Readers (image -> partitions -> filesystem -> entries):
export {
  fileSource, bufferSource, subSource, readPartitionTable, partitionSource, findPartition, openFilesystem, detectFilesystem, selectVolume,
  Ext4Reader, openExt4, FatReader, openFat,
  type ByteSource, type FileSource, type PartitionTable, type PartitionEntry, type Volume, type FilesystemType, type FsReader, type FsSummary,
} from '../read/index.ts';
