// POSIX ACLs: the VFS xattr form (what getxattr returns: version 2, 8-byte
// entries) becomes ext4's compact on-disk form (version 1; 4-byte entries for
// USER_OBJ, GROUP_OBJ, MASK and OTHER, 8-byte entries for named USER and GROUP).
// Reference: kernel fs/ext4/acl.h, include/uapi/linux/posix_acl_xattr.h
const VFS_VERSION = 2;
const EXT4_VERSION = 1;
const USER_OBJ = 0x01;
const USER = 0x02;
const GROUP_OBJ = 0x04;
const GROUP = 0x08;
const MASK = 0x10;
const OTHER = 0x20;

/** Converts a system.posix_acl_* value to ext4's on-disk encoding; null when it is not a valid ACL. */
export function aclToDisk(vfs: Buffer): Buffer | null {
  if (vfs.length < 4 || (vfs.length - 4) % 8 !== 0 || vfs.readUInt32LE(0) !== VFS_VERSION) return null;
  const parts: Buffer[] = [Buffer.alloc(4)];
  parts[0].writeUInt32LE(EXT4_VERSION);
  for (let at = 4; at < vfs.length; at += 8) {
    const tag = vfs.readUInt16LE(at);
    const perm = vfs.readUInt16LE(at + 2);
    const id = vfs.readUInt32LE(at + 4);
    if (tag === USER || tag === GROUP) {
      const e = Buffer.alloc(8);
      e.writeUInt16LE(tag, 0);
      e.writeUInt16LE(perm, 2);
      e.writeUInt32LE(id, 4);
      parts.push(e);
    } else if (tag === USER_OBJ || tag === GROUP_OBJ || tag === MASK || tag === OTHER) {
      const e = Buffer.alloc(4);
      e.writeUInt16LE(tag, 0);
      e.writeUInt16LE(perm, 2);
      parts.push(e);
    } else {
      return null;
    }
  }
  return Buffer.concat(parts);
}

/** ACL_UNDEFINED_ID: the id the kernel reports for entries that have none (USER_OBJ, GROUP_OBJ, MASK, OTHER). */
const UNDEFINED_ID = 0xffffffff;

/**
 * The reverse of aclToDisk: ext4's on-disk ACL (version 1) as the VFS xattr
 * value getxattr returns (version 2, 8-byte entries, ACL_UNDEFINED_ID where an
 * entry has no id); null when it is not a valid on-disk ACL.
 */
export function aclFromDisk(disk: Buffer): Buffer | null {
  if (disk.length < 4 || disk.readUInt32LE(0) !== EXT4_VERSION) return null;
  const parts: Buffer[] = [Buffer.alloc(4)];
  parts[0].writeUInt32LE(VFS_VERSION);
  for (let at = 4; at < disk.length; ) {
    if (at + 4 > disk.length) return null;
    const tag = disk.readUInt16LE(at);
    const perm = disk.readUInt16LE(at + 2);
    const e = Buffer.alloc(8);
    e.writeUInt16LE(tag, 0);
    e.writeUInt16LE(perm, 2);
    if (tag === USER || tag === GROUP) {
      if (at + 8 > disk.length) return null;
      e.writeUInt32LE(disk.readUInt32LE(at + 4), 4);
      at += 8;
    } else if (tag === USER_OBJ || tag === GROUP_OBJ || tag === MASK || tag === OTHER) {
      e.writeUInt32LE(UNDEFINED_ID, 4);
      at += 4;
    } else {
      return null;
    }
    parts.push(e);
  }
  return Buffer.concat(parts);
}
