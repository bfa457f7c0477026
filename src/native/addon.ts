// The one place that loads the native addon (src/native/*.c): syscall
// plumbing Node lacks (xattrs, mknod, exact utimensat, *at calls on directory
// handles, O_TMPFILE, SEEK_DATA/SEEK_HOLE, copy_file_range). Each caller
// declares the functions it uses.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const addon = require('../../build/Release/xattr.node') as Record<string, (...args: any[]) => any>;
