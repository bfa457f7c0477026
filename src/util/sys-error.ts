// System errors in words: what the user sees instead of Node's codes and
// JavaScript messages. Every layer that touches the host file system turns
// an errno into one of these phrases, with the path it was working on.
const WORDS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large for the file system',
  EIO: 'input/output error',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'already exists',
  EXDEV: 'on another file system',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EBUSY: 'device or resource busy',
  ENOTEMPTY: 'directory not empty',
  EINVAL: 'invalid argument',
  ENOTSUP: 'operation not supported',
  EOPNOTSUPP: 'operation not supported',
  EMLINK: 'too many links',
  EAGAIN: 'resource temporarily unavailable',
  ETXTBSY: 'text file busy',
  EBADF: 'bad file descriptor',
};

/** What to do about each, where there is something obvious. */
const ADVICE: Record<string, string> = {
  ENOENT: 'check the path',
  EACCES: 'check its permissions',
  EPERM: 'check its permissions (some operations need root)',
  EROFS: 'choose a writable location',
  ENOSPC: 'free space or choose another output',
  EDQUOT: 'free space or choose another output',
  EFBIG: 'choose an output on a file system that takes large files',
  EISDIR: 'give a file, not a directory',
  ENOTDIR: 'check the path',
  EXDEV: 'keep the output on one file system',
  EMFILE: 'raise the open-file limit (ulimit -n)',
};

/** The errno code of a Node system error, or undefined for anything else. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** "read-only file system" for EROFS; the code itself for one without words. */
export function errnoWords(code: string): string {
  return WORDS[code] ?? code;
}

/** "cannot write /x/y: read-only file system; choose a writable location". */
export function describeSystemError(doing: string, path: string, err: unknown): string {
  const code = errnoOf(err) ?? 'EIO';
  const advice = ADVICE[code];
  return `${doing} ${path}: ${errnoWords(code)}${advice ? `; ${advice}` : ''}`;
}
