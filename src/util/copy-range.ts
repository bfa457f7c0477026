// File-to-file copies inside the kernel (copy_file_range through the addon):
// no read into a buffer and write back out, and a shared extent where the
// file system can reflink. An addon built before it had the call, or a
// platform without it, answers -2 and callers read and write instead.
import { addon } from '../native/addon.ts';

type CopyRange = (fdIn: number, offIn: number, fdOut: number, offOut: number, length: number) => number;

/** The addon's call, held where a test can wrap it to count the bytes the kernel copies. */
export const kernelCopy: { fn: CopyRange | undefined } = { fn: addon?.copyFileRange as CopyRange | undefined };

/**
 * Copies up to `length` bytes of `fdIn` at `offIn` to `fdOut` at `offOut`:
 * the bytes copied (0 at the input's end), or -2 when these files cannot be
 * copied this way (different file systems, unsupported kind of file).
 */
export function copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): number {
  const native = kernelCopy.fn;
  return typeof native === 'function' ? native(fdIn, offIn, fdOut, offOut, length) : -2;
}
