// What the reading commands (inspect, ls, cat, extract, diff) share on the
// command line: the --input-format option, warnings to stderr, and how times
// are shown (names: read/names.ts).
import { Option } from 'commander';
import { INPUT_FORMATS } from '../format/input.ts';

export { isoTime } from '../api/volume.ts';

export function inputFormatOption(): Option {
  return new Option('--input-format <format>', `read the image as this format instead of detecting it (${INPUT_FORMATS.join(', ')}); raw accepts any file`);
}

export const IMAGE_ARG = 'disk image (raw, qcow2, VDI, VHD or .zst); IMAGE:N or IMAGE:LABEL names a partition by number, GPT name or filesystem label';

/** One line per warning on stderr. */
export function warn(lines: readonly string[]): void {
  for (const l of lines) process.stderr.write(`diskwright: warning: ${l}\n`);
}
