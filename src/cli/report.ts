// `diskwright report IMAGE [-o report.html] [--top N] [--json]`: where an
// image's bytes go, as an HTML page and as a ranking in the terminal; the
// figures come from src/report/.
import * as path from 'node:path';
import { Command } from 'commander';
import { DiskwrightError } from '../errors.ts';
import { writeSmallFile } from '../format/atomic-file.ts';
import { renderHtml } from '../report/html.ts';
import { sizeReport, type SizeNode, type SizeReport } from '../report/report.ts';
import { formatSize } from '../util/sizes.ts';
import { inputFormatOption, warn } from './reading.ts';

/** The N largest leaves of the tree (files, metadata, free space), for an image without a store. */
function largestLeaves(root: SizeNode, n: number): Array<{ path: string; node: SizeNode }> {
  const out: Array<{ path: string; node: SizeNode }> = [];
  const visit = (node: SizeNode, at: string) => {
    if (!node.children) return out.push({ path: at, node });
    for (const k of node.children) visit(k, at === '' ? k.name : `${at} > ${k.name}`);
  };
  visit(root, '');
  return out.sort((a, b) => b.node.size - a.node.size || b.node.span - a.node.span || (a.path < b.path ? -1 : 1)).slice(0, n);
}

function table(rows: string[][], right: number): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : i < right ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd());
}

/** The terminal ranking: the top-level breakdown, then the N largest store paths (or entries). */
export function renderTop(r: SizeReport, n: number): string[] {
  const lines = [`${r.image}: ${formatSize(r.allocatedSize)} allocated (${r.allocatedSize} bytes), virtual size ${formatSize(r.virtualSize)}`];
  for (const k of r.root.children ?? []) lines.push(`  ${formatSize(k.size).padStart(10)}  ${k.name}`);
  if (r.storePaths.length > 0) {
    lines.push(`largest store paths (references from ${r.referencesSource}):`);
    const rows = [['#', 'size', 'closure', 'paths', 'store path']];
    r.storePaths.slice(0, n).forEach((p, i) => rows.push([String(i + 1), formatSize(p.size), formatSize(p.closureSize), String(p.closureCount), p.path]));
    lines.push(...table(rows, 4).map((l) => `  ${l}`));
  } else {
    lines.push('largest entries:');
    const rows = [['#', 'size', 'where']];
    largestLeaves(r.root, n).forEach((e, i) => rows.push([String(i + 1), formatSize(e.node.size), e.path]));
    lines.push(...table(rows, 2).map((l) => `  ${l}`));
  }
  return lines;
}

function parseTop(text: string): number {
  if (!/^\d{1,6}$/.test(text) || Number(text) === 0) throw new DiskwrightError('OPTION_INVALID', `--top ${text}: give a whole number from 1 to 999999`, {});
  return Number(text);
}

export function reportCommand(): Command {
  return new Command('report')
    .description('show where an image\'s bytes go: an HTML page with a zoomable treemap and the largest Nix store paths with their closure sizes')
    .argument('<image>', 'disk image (raw, qcow2, VDI, VHD or .zst)')
    .option('-o, --output <file>', "the HTML page to write ('-' for standard output; default IMAGE-NAME.html in the current directory unless --top or --json is given)")
    .option('--top <n>', 'print the N largest store paths (or entries, without a store) with their closure sizes', parseTop)
    .option('--json', 'print the report as one JSON object (with --top: the N largest store paths and entries instead of the whole tree)')
    .option('--nix-store-dir <dir>', 'where the store paths are when the image has no Nix database or registration naming them', '/nix/store')
    .addOption(inputFormatOption())
    .action((image: string, o: { output?: string; top?: number; json?: boolean; nixStoreDir: string; inputFormat?: string }) => {
      if (o.output === '-' && (o.top !== undefined || o.json)) {
        throw new DiskwrightError('OPTION_INVALID', '-o - writes the page to standard output, where --top and --json print too; give the page a file name', {});
      }
      const r = sizeReport(image, { inputFormat: o.inputFormat, nixStoreDir: o.nixStoreDir });
      warn(r.warnings);
      const out = o.output ?? (o.top === undefined && !o.json ? `${path.basename(image)}.html` : undefined);
      if (out === '-') process.stdout.write(renderHtml(r));
      else if (out !== undefined) {
        writeSmallFile(out, 'report', renderHtml(r));
        process.stderr.write(`wrote ${out}\n`);
      }
      if (o.json) {
        const largest = (n: number) => largestLeaves(r.root, n).map((e) => ({ where: e.path, kind: e.node.kind, size: e.node.size, span: e.node.span }));
        const doc = o.top === undefined ? r : { ...r, root: undefined, storePaths: r.storePaths.slice(0, o.top), largest: largest(o.top) };
        process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
      } else if (o.top !== undefined) process.stdout.write(renderTop(r, o.top).join('\n') + '\n');
    });
}
