// FAT32 FSInfo sector. Spec: fatgen103 section 5 (FAT32 FSInfo Sector Structure
// and Backup Boot Sector).
import { defineStruct } from '../../util/struct.ts';
import { SECTOR } from './constants.ts';

export const FSINFO = defineStruct(SECTOR, [
  ['FSI_LeadSig', 0, 'u32'],
  ['FSI_Reserved1', 4, { bytes: 480 }],
  ['FSI_StrucSig', 484, 'u32'],
  ['FSI_Free_Count', 488, 'u32'],
  ['FSI_Nxt_Free', 492, 'u32'],
  ['FSI_Reserved2', 496, { bytes: 12 }],
  ['FSI_TrailSig', 508, 'u32'],
]);

/** "Not known": what FSI_Free_Count and FSI_Nxt_Free hold when there is nothing to say. */
export const FSI_UNKNOWN = 0xffffffff;

/**
 * `free`: free clusters; `nextFree`: where a driver should start looking for a
 * free cluster (the first free one, or unknown when the volume is full).
 */
export function encodeFsInfo(free: number, nextFree: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  FSINFO.encode(b, 0, {
    FSI_LeadSig: 0x41615252, // "RRaA"
    FSI_StrucSig: 0x61417272, // "rrAa"
    FSI_Free_Count: free,
    FSI_Nxt_Free: nextFree,
    FSI_TrailSig: 0xaa550000,
  });
  return b;
}
