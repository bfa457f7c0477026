// FAT constants. Spec: Microsoft "FAT: General Overview of On-Disk Format"
// (fatgen103), sections 3 (boot sector and BPB), 4 (FAT type determination),
// 6 (directory structure) and the long-name addendum; dosfstools mkfs.fat 4.2
// for the geometry choices we copy.

/** Logical sector size: the only one diskwright writes (what every consumer expects). */
export const SECTOR = 512;
export const DIR_ENTRY_SIZE = 32;
export const NUM_FATS = 2;
/** Fixed disk. mkfs.fat's default for everything that is not an exact floppy size. */
export const MEDIA = 0xf8;
/** BS_DrvNum for a fixed disk. */
export const DRIVE_NUMBER = 0x80;
export const EXT_BOOT_SIG = 0x29;

export type FatType = 12 | 16 | 32;

// Cluster counts decide the FAT type (fatgen103 section 4). mkfs.fat 4.2 keeps
// clear of 4085/4086 because Windows' fastfat reads fewer than 4087 as FAT12.
export const MIN_CLUSTERS: Record<FatType, number> = { 12: 1, 16: 4087, 32: 65525 };
/** FAT32's top cluster number must stay below 0x0FFFFFF7 (the bad-cluster mark). */
export const MAX_CLUSTERS: Record<FatType, number> = { 12: 4084, 16: 65524, 32: 0x0ffffff5 };

/** FAT[0] holds the media byte in its low 8 bits, all other bits set; FAT[1] is an EOC mark. */
export const ENTRY_MASK: Record<FatType, number> = { 12: 0xfff, 16: 0xffff, 32: 0x0fffffff };
/** End of chain as Windows and Linux write it (any value >= 0x..FF8 reads as EOC). */
export const EOC: Record<FatType, number> = { 12: 0xfff, 16: 0xffff, 32: 0x0fffffff };

/** Reserved sectors before alignment (mkfs.fat: 1, or 32 on FAT32 for boot, FSInfo and backups). */
export const RESERVED_SECTORS: Record<FatType, number> = { 12: 1, 16: 1, 32: 32 };
/** Root directory slots on FAT12/16 before alignment (mkfs.fat's default for fixed disks). */
export const ROOT_ENTRIES = 512;
export const FSINFO_SECTOR = 1;
export const BACKUP_BOOT_SECTOR = 6;
/** FAT32's root directory starts in the first data cluster. */
export const ROOT_CLUSTER = 2;

// DIR_Attr bits (fatgen103 section 6).
export const ATTR_READ_ONLY = 0x01;
export const ATTR_HIDDEN = 0x02;
export const ATTR_SYSTEM = 0x04;
export const ATTR_VOLUME_ID = 0x08;
export const ATTR_DIRECTORY = 0x10;
export const ATTR_ARCHIVE = 0x20;
export const ATTR_LONG_NAME = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_VOLUME_ID;

/** A directory holds at most 65536 32-byte entries (a 2 MiB file). */
export const MAX_DIR_ENTRIES = 65536;
/** Long names are at most 255 UTF-16 code units. */
export const MAX_LFN_UNITS = 255;
/** FAT file sizes are 32-bit. */
export const MAX_FILE_SIZE = 0xffffffff;
/** FAT32 with 512-byte sectors: BPB_TotSec32 is 32-bit. */
export const MAX_SECTORS = 0xffffffff;
