// Output timestamps when none is given: SOURCE_DATE_EPOCH or 1, never the clock.
import { DiskwrightError } from '../errors.ts';
import { EXT4_MAX_TIME } from '../fs/ext4/inode.ts';

/** The latest epoch taken where ext4 does not limit it (FAT and VHD clamp to their own ranges). */
export const MAX_EPOCH = 2 ** 34 - 1;

/**
 * SOURCE_DATE_EPOCH if set, else 1: never the clock. A value that is not a
 * whole number of seconds from 0 to `max` (by default the latest time ext4
 * stores) is refused rather than taken as unset: the build would not be the
 * one asked for.
 */
export function defaultEpoch(env: NodeJS.ProcessEnv = process.env, max = EXT4_MAX_TIME): number {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined) return 1;
  if (!/^\d+$/.test(v) || Number(v) > max) {
    throw new DiskwrightError('OPTION_INVALID', `SOURCE_DATE_EPOCH ${JSON.stringify(v)} is not a whole number of seconds from 0 to ${max}${max === EXT4_MAX_TIME ? ' (the latest time ext4 stores, in 2446)' : ''}; set it to one such as 1700000000, or unset it`, { env: 'SOURCE_DATE_EPOCH', value: v });
  }
  return Number(v);
}
