// The options every command spells the same way (-o/--output, --stream,
// --json, --compress-level), the old spellings kept for one release with a
// deprecation note, and where a --json document goes.
import { Option } from 'commander';
import type { z } from 'zod';
import { DiskwrightError } from '../errors.ts';

export function outputOption(what: string): Option {
  return new Option('-o, --output <path>', what);
}

export function streamOption(what = 'the image'): Option {
  return new Option('--stream', `write ${what} to standard output (same as -o -)`);
}

export function jsonOption(): Option {
  return new Option('--json', 'print the result as one JSON document on standard output (standard error when the output goes to standard output); `diskwright schema output` has its JSON Schema');
}

export function compressLevelOption(levels: string): Option {
  return new Option('--compress-level <n>', levels);
}

/** An old spelling: accepted, left out of --help. */
export function deprecatedOption(flags: string): Option {
  return new Option(flags).hideHelp();
}

/** One line on stderr for an old spelling (the next release drops it). */
export function deprecated(old: string, now: string): void {
  process.stderr.write(`diskwright: warning: ${old} is deprecated and goes in the next release; use ${now}\n`);
}

/**
 * The output an old spelling or the new one gives, with the note for the old
 * one; both at once is an error, as they could disagree.
 */
export function pickOutput(now: string | undefined, old: string | undefined, oldName: string): string | undefined {
  if (old === undefined) return now;
  if (now !== undefined) throw new DiskwrightError('OPTION_INVALID', `${oldName} and -o/--output both name the output; give -o/--output only`, {});
  deprecated(oldName, '-o/--output');
  return old;
}

/** A number option: a whole number from 0 to max, else a one-line error naming it. */
export function uint(name: string, text: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text) || Number(text) > max) throw new DiskwrightError('OPTION_INVALID', `${name} ${text}: give a whole number from 0 to ${max}`, {});
  return Number(text);
}

/**
 * Prints a --json document (typed against its schema in output-schemas.ts):
 * on stdout, or on stderr when stdout carries the image.
 */
export function printJson<S extends z.ZodType>(_schema: S, doc: z.input<S>, toStderr = false): void {
  (toStderr ? process.stderr : process.stdout).write(JSON.stringify(doc, null, 2) + '\n');
}
