// The diskwright command line: one subcommand per file; errors become one line.
import { Command, CommanderError } from 'commander';
import { DiskwrightError } from '../api/errors.ts';
import { errnoOf, errnoWords, describeSystemError } from '../util/sys-error.ts';
import { ERROR_STATUS, exitStatus } from './status.ts';

// Each command's module, loaded only when that command runs: loading (and
// type-stripping) every command's code would cost each run about half a second.
const COMMANDS: Record<string, () => Promise<Command>> = {
  build: async () => (await import('./build.ts')).buildCommand(),
  mkfs: async () => (await import('./mkfs.ts')).mkfsCommand(),
  nar: async () => (await import('./nar.ts')).narCommand(),
  closure: async () => (await import('./closure.ts')).closureCommand(),
  convert: async () => (await import('./convert.ts')).convertCommand(),
  inspect: async () => (await import('./inspect.ts')).inspectCommand(),
  ls: async () => (await import('./ls.ts')).lsCommand(),
  cat: async () => (await import('./cat.ts')).catCommand(),
  extract: async () => (await import('./extract.ts')).extractCommand(),
  diff: async () => (await import('./diff.ts')).diffCommand(),
};

export async function main(argv: string[]): Promise<number> {
  const program = new Command('diskwright')
    .description('Build ext4, FAT and partitioned disk images in userspace, bit-for-bit reproducible.')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  // The command named first, or all of them for help and unknown names.
  const named = COMMANDS[argv[0]];
  for (const make of named ? [named] : Object.values(COMMANDS)) program.addCommand(await make());
  // The command that runs, for its error status (diff: 2, as cmp and diff do).
  let running = '';
  program.hook('preAction', (_program, action) => {
    running = action.name();
  });
  for (const c of program.commands) {
    c.exitOverride();
    for (const s of c.commands) s.exitOverride();
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitStatus();
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    // The reader of standard output went away (`| head`): stop as a killed
    // writer would, quietly, with the status a shell gives SIGPIPE.
    if ((err as NodeJS.ErrnoException)?.code === 'EPIPE') return 141;
    process.stderr.write(`diskwright: ${errorLine(err)}\n`);
    if (process.env.DISKWRIGHT_DEBUG === '1' && (err as Error)?.stack) process.stderr.write(`${(err as Error).stack}\n`);
    return ERROR_STATUS[running] ?? 1;
  }
}

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
    if (target) return describeSystemError(DOING[e.syscall] ?? `cannot ${e.syscall}`, String(target), err);
    return `${e.syscall}: ${errnoWords(code)}`;
  }
  // A bug in diskwright: the JavaScript message means nothing to the user; the stack goes to whoever debugs it.
  return `internal error; please report it with the command you ran${process.env.DISKWRIGHT_DEBUG === '1' ? '' : ' (DISKWRIGHT_DEBUG=1 shows the details)'}`;
}

process.exitCode = await main(process.argv.slice(2));
