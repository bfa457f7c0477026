// The diskwright command line: one subcommand per file; errors become one line.
import { Command, CommanderError } from 'commander';
import { DiskwrightError } from '../api/errors.ts';
import { mkfsCommand } from './mkfs.ts';
import { buildCommand } from './build.ts';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('diskwright')
    .description('Build ext4, FAT and partitioned disk images in userspace, bit-for-bit reproducible.')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  program.addCommand(buildCommand());
  program.addCommand(mkfsCommand());
  for (const c of program.commands) {
    c.exitOverride();
    for (const s of c.commands) s.exitOverride();
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof DiskwrightError) {
      process.stderr.write(`diskwright: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
