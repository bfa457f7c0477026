// `diskwright diff A B [--json]`: rendering and the exit status only (0 identical,
// 1 different, 2 errors); the comparison is src/api/diff.ts.
import { Command } from 'commander';
import { diffImages, type ByteRange, type DiffResult, type FieldChange } from '../api/diff.ts';
import { formatSize } from '../util/sizes.ts';
import { inputFormatOption, warn } from './reading.ts';
import { EXIT, setExitStatus } from './status.ts';
import { jsonOption, printJson } from './grammar.ts';
import { diffOutput } from './output-schemas.ts';

const hex = (n: number) => `0x${n.toString(16)}`;
const value = (v: string | null) => (v === null ? '(none)' : v);
const change = (c: FieldChange) =>
  c.offset !== undefined
    ? `${c.field} differs from offset ${c.offset}: a=${c.a || '(end)'} b=${c.b || '(end)'}`
    : `${c.field} a=${value(c.a)} b=${value(c.b)}${c.alsoIn ? ` (${c.alsoIn.join(', ')} the same)` : ''}`;

/** Ranges with the same owner on both sides, grouped: one line per owner. */
function rangeLines(ranges: ByteRange[]): string[] {
  const groups = new Map<string, ByteRange[]>();
  for (const r of ranges) {
    const k = `${r.area}\0${r.owner}\0${r.ownerB ?? ''}`;
    const g = groups.get(k) ?? [];
    g.push(r);
    groups.set(k, g);
  }
  const lines: string[] = [];
  const MAX_GROUPS = 200;
  let shown = 0;
  for (const g of groups.values()) {
    if (shown++ === MAX_GROUPS) {
      lines.push(`  ... ${groups.size - MAX_GROUPS} more owners (--json lists every range)`);
      break;
    }
    const r0 = g[0];
    const total = g.reduce((n, r) => n + r.length, 0);
    const owner = r0.ownerB === undefined ? r0.owner : `${r0.owner} in a, ${r0.ownerB} in b`;
    const spans = g.slice(0, 8).map((r) => (r.length === 1 ? hex(r.offset) : `${hex(r.offset)}+${r.length}`));
    if (g.length > 8) spans.push(`... (${g.length - 8} more)`);
    const entries = [...new Set(g.flatMap((r) => [r.entry, r.entryB]).filter((e): e is string => e !== undefined))];
    const who = entries.length ? `; ${entries.slice(0, 6).join(', ')}${entries.length > 6 ? `, ... (${entries.length - 6} more)` : ''}` : '';
    const what = total === 1 ? '1 byte at' : `${total} bytes in ${g.length} range${g.length === 1 ? '' : 's'}:`;
    lines.push(`  ${r0.area}, ${owner}: ${what} ${spans.join(', ')}${who}`);
  }
  return lines;
}

export function renderDiff(r: DiffResult): string[] {
  const desc = (s: DiffResult['a']) => `${s.path} (${s.description}, ${formatSize(s.size)})`;
  if (r.identical) return [`identical: ${desc(r.a)} and ${desc(r.b)} hold the same ${r.a.size} bytes`];
  const lines = [`a: ${desc(r.a)}`, `b: ${desc(r.b)}`];
  lines.push(`${r.differingBytes} bytes differ in ${r.differingRanges} range${r.differingRanges === 1 ? '' : 's'}`);
  if (r.disk.length) {
    lines.push('disk:');
    for (const c of r.disk) lines.push(`  ${change(c)}`);
  }
  for (const p of r.partitions) {
    if (p.change === 'changed') {
      lines.push(`partition ${p.partition}:`);
      for (const c of p.fields) lines.push(`  ${change(c)}`);
    } else lines.push(`partition ${p.partition}: only in ${p.change === 'added' ? 'b' : 'a'}`);
  }
  for (const v of r.volumes) {
    lines.push(`${v.partition === null ? 'filesystem' : `partition ${v.partition}`} (${v.filesystem}):`);
    for (const c of v.fields) lines.push(`  ${change(c)}`);
    for (const f of v.files) {
      if (f.change !== 'changed') lines.push(`  ${f.path}: only in ${f.change === 'added' ? 'b' : 'a'} (${f.type})`);
      else for (const c of f.fields) lines.push(`  ${f.path}: ${change(c)}`);
    }
  }
  if (r.ranges.length) {
    lines.push('differing bytes no file above explains:');
    lines.push(...rangeLines(r.ranges));
  }
  if (r.rangesTruncated) lines.push('  (more ranges differ than were kept)');
  if (r.explainedBytes) lines.push(`${r.explainedBytes} of the differing bytes belong to the files above`);
  return lines;
}

export function diffCommand(): Command {
  return new Command('diff')
    .description('compare two images by content (any formats): exit 0 when identical, 1 when they differ (with a report), 2 on errors')
    .argument('<a>', 'first image (raw, qcow2, VDI, VHD or .zst)')
    .argument('<b>', 'second image')
    .addOption(jsonOption())
    .addOption(inputFormatOption())
    .action((a: string, b: string, o: { json?: boolean; inputFormat?: string }) => {
      const r = diffImages(a, b, { inputFormat: o.inputFormat });
      warn(r.warnings);
      if (o.json) printJson(diffOutput, r);
      else process.stdout.write(renderDiff(r).join('\n') + '\n');
      setExitStatus(r.identical ? EXIT.ok : EXIT.error);
    });
}
