// The typed public API.
export { mkfsExt4, planExt4Image, defaultEpoch, type MkfsExt4Options, type MkfsResult } from './mkfs.ts';
export { DiskwrightError, type ErrorCode } from './errors.ts';
export type { Ext4Stats } from '../fs/ext4/planner.ts';
export type { Image, ImageExtent } from '../image/extent-map.ts';
