// The diskwright command line: one subcommand per file; errors become one line.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { errorLine } from './error-line.ts';
import { errorStatus, EXIT, exitStatus } from './status.ts';
import { terminalProgressLine, type ProgressLine } from './progress-line.ts';
import { withProgress, type ProgressContext } from '../util/progress.ts';

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
  initrd: async () => (await import('./initrd.ts')).initrdCommand(),
  container: async () => (await import('./container.ts')).containerCommand(),
  report: async () => (await import('./report.ts')).reportCommand(),
  schema: async () => (await import('./schema.ts')).schemaCommand(),
};

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('diskwright')
    .description('Build ext4, FAT and partitioned disk images in userspace, bit-for-bit reproducible.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  // The command named first, or all of them for help and unknown names.
  const named = COMMANDS[argv[0]];
  for (const make of named ? [named] : Object.values(COMMANDS)) program.addCommand(await make());
  // The command that runs, for its error status (status.ts).
  let running = '';
  // Filled in once the command's options are known: the progress line, on a terminal only.
  const progress: ProgressContext = {};
  let line: ProgressLine | undefined;
  program.hook('preAction', (_program, action) => {
    running = action.name();
    const o = action.opts();
    if (process.stderr.isTTY && !o.quiet && !o.json) {
      line = terminalProgressLine();
      progress.onProgress = line.listener;
    }
  });
  for (const c of program.commands) {
    c.exitOverride();
    for (const s of c.commands) s.exitOverride();
    for (const leaf of c.commands.length ? c.commands : [c]) {
      if (!leaf.options.some((o) => o.long === '--quiet')) leaf.option('-q, --quiet', 'no progress line on stderr');
    }
  }
  try {
    await withProgress(progress, () => program.parseAsync(argv, { from: 'user' }));
    line?.end();
    return exitStatus();
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    line?.end();
    // The reader of standard output went away (`| head`): stop as a killed
    // writer would, quietly, with the status a shell gives SIGPIPE.
    if ((err as NodeJS.ErrnoException)?.code === 'EPIPE') return EXIT.pipe;
    process.stderr.write(`diskwright: ${errorLine(err)}\n`);
    if (process.env.DISKWRIGHT_DEBUG === '1' && (err as Error)?.stack) process.stderr.write(`${(err as Error).stack}\n`);
    return errorStatus(err, running);
  }
}

process.exitCode = await main(process.argv.slice(2));
