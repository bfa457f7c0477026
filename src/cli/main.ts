// The diskwright command line: one subcommand per file; errors become one line.
import { Command, CommanderError } from 'commander';
import { DiskwrightError } from '../api/errors.ts';
import { mkfsCommand } from './mkfs.ts';
import { buildCommand } from './build.ts';
import { narCommand } from './nar.ts';
import { closureCommand } from './closure.ts';
import { convertCommand } from './convert.ts';
import { inspectCommand } from './inspect.ts';
import { lsCommand } from './ls.ts';
import { catCommand } from './cat.ts';
import { extractCommand } from './extract.ts';
import { diffCommand } from './diff.ts';
import { ERROR_STATUS, exitStatus } from './status.ts';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('diskwright')
    .description('Build ext4, FAT and partitioned disk images in userspace, bit-for-bit reproducible.')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  program.addCommand(buildCommand());
  program.addCommand(mkfsCommand());
  program.addCommand(narCommand());
  program.addCommand(closureCommand());
  program.addCommand(convertCommand());
  program.addCommand(inspectCommand());
  program.addCommand(lsCommand());
  program.addCommand(catCommand());
  program.addCommand(extractCommand());
  program.addCommand(diffCommand());
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
    if (err instanceof DiskwrightError) {
      process.stderr.write(`diskwright: ${err.message}\n`);
      return ERROR_STATUS[running] ?? 1;
    }
    if (ERROR_STATUS[running] !== undefined) {
      process.stderr.write(`diskwright: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
      return ERROR_STATUS[running];
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
