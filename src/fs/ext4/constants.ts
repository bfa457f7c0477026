// ext4 constants. Reference: Linux Documentation/filesystems/ext4/ (globals,
// dynamic structures) and e2fsprogs lib/ext2fs/ext2_fs.h for the names.
export const BLOCK_SIZE = 4096;
export const LOG_BLOCK_SIZE = 2; // 1024 << 2
export const BLOCKS_PER_GROUP = BLOCK_SIZE * 8;
export const DESC_SIZE = 64; // 64bit feature
export const LOG_GROUPS_PER_FLEX = 4; // mke2fs default: 16 groups per flex group
export const FIRST_INO = 11;
export const ROOT_INO = 2;
export const JOURNAL_INO = 8;
export const LOST_FOUND_INO = 11;
export const EXTRA_ISIZE = 32;
export const MAX_EXTENT_LEN = 32768; // initialized extents
export const MAX_LINKS = 65000; // EXT4_LINK_MAX; a dir past it gets i_links_count 1 (dir_nlink)
export const SUPER_MAGIC = 0xef53;
export const EXTENT_MAGIC = 0xf30a;
export const XATTR_MAGIC = 0xea020000;
export const JBD2_MAGIC = 0xc03b3998;

export const COMPAT_HAS_JOURNAL = 0x4;
export const COMPAT_EXT_ATTR = 0x8;
export const COMPAT_DIR_INDEX = 0x20;
export const INCOMPAT_FILETYPE = 0x2;
export const INCOMPAT_EXTENTS = 0x40;
export const INCOMPAT_64BIT = 0x80;
export const INCOMPAT_FLEX_BG = 0x200;
export const RO_COMPAT_SPARSE_SUPER = 0x1;
export const RO_COMPAT_LARGE_FILE = 0x2;
export const RO_COMPAT_HUGE_FILE = 0x8;
export const RO_COMPAT_DIR_NLINK = 0x20;
export const RO_COMPAT_EXTRA_ISIZE = 0x40;
export const RO_COMPAT_METADATA_CSUM = 0x400;

export const FLAG_SIGNED_HASH = 0x1;
export const FLAG_UNSIGNED_HASH = 0x2; // s_flags: fixed, never taken from the host's char signedness
export const FLAG_TEST_FS = 0x4;
export const HASH_HALF_MD4 = 1;

export const INODE_FL_INDEX = 0x1000;
export const INODE_FL_EXTENTS = 0x80000;

export const BG_INODE_UNINIT = 0x1;
export const BG_INODE_ZEROED = 0x4;

export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;

export const FT_REG = 1;
export const FT_DIR = 2;
export const FT_CHR = 3;
export const FT_BLK = 4;
export const FT_FIFO = 5;
export const FT_SOCK = 6;
export const FT_SYMLINK = 7;
