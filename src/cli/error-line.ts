// The one line an error that ends a command becomes on stderr (main.ts).
import { DiskwrightError } from '../errors.ts';
import { describeSystemError, errnoOf, errnoWords } from '../util/sys-error.ts';

/** What a system call was doing, as the start of a sentence about its path. */
const DOING: Record<string, string> = {
  open: 'cannot open', read: 'cannot read', write: 'cannot write', mkdir: 'cannot create', rmdir: 'cannot remove', unlink: 'cannot remove',
  rename: 'cannot rename', link: 'cannot link', symlink: 'cannot create', stat: 'cannot read', lstat: 'cannot read', scandir: 'cannot list',
  opendir: 'cannot list', chmod: 'cannot set the mode of', chown: 'cannot set the owner of', lchown: 'cannot set the owner of',
  utime: 'cannot set the times of', ftruncate: 'cannot write', fsync: 'cannot write', close: 'cannot write', copyfile: 'cannot copy',
};

/**
 * The one line an error becomes: a DiskwrightError's message; a system error
 * in words with its path; anything else is a bug in diskwright, said as such
 * (its stack only with DISKWRIGHT_DEBUG=1), never a JavaScript message alone.
 */
export function errorLine(err: unknown): string {
  if (err instanceof DiskwrightError) return err.message;
  const code = errnoOf(err);
  const e = err as (NodeJS.ErrnoException & { dest?: string }) | undefined;
  if (code && typeof e?.syscall === 'string') {
    const target = e.dest ? `${e.path} to ${e.dest}` : e.path;
    const doing = DOING[e.syscall] ?? `cannot ${e.syscall}`;
    return target ? describeSystemError(doing, String(target), err) : `${doing}: ${errnoWords(code)}`;
  }
  // A bug in diskwright: the JavaScript message means nothing to the user; the stack goes to whoever debugs it.
  return `internal error; please report it with the command you ran${process.env.DISKWRIGHT_DEBUG === '1' ? '' : ' (DISKWRIGHT_DEBUG=1 shows the details)'}`;
}
