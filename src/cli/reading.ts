// What the reading commands (inspect, ls, cat, extract, diff) share on the
// command line: the --input-format option, warnings to stderr, and how names
// and times are shown.
import { Option } from 'commander';
import { INPUT_FORMATS } from '../format/input.ts';
import { displayKey } from '../read/entry.ts';

export { isoTime } from '../api/volume.ts';

export function inputFormatOption(): Option {
  return new Option('--input-format <format>', `read the image as this format instead of detecting it (${INPUT_FORMATS.join(', ')}); raw accepts any file`);
}

export const IMAGE_ARG = 'disk image (raw, qcow2, VDI, VHD or .zst); IMAGE:N or IMAGE:LABEL names a partition by number, GPT name or filesystem label';

/** One line per warning on stderr. */
export function warn(lines: readonly string[]): void {
  for (const l of lines) process.stderr.write(`diskwright: warning: ${l}\n`);
}

/** A byte-string name or path for a terminal: UTF-8 where valid, control bytes and invalid bytes as \xNN. */
export function showName(key: string): string {
  // eslint-disable-next-line no-control-regex
  return displayKey(key).replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

