// `report`: where an image's bytes go, as data (the HTML page and the
// terminal ranking render it): the size tree and the store paths with their
// closure sizes.
import { writeSmallFile } from '../format/atomic-file.ts';
import { renderHtml } from './html.ts';
import { collectImage, type ReportOptions } from './collect.ts';
import { closureSizes, type StorePathRow } from './closure.ts';
import { planSizes, type SizeNode } from './plan.ts';

export type { ReportOptions, SizeNode, StorePathRow };

export interface SizeReport {
  image: string;
  format: string;
  description: string;
  virtualSize: number;
  /** The image file's allocated bytes (inspect's allocatedSize). */
  allocatedSize: number;
  /** Bytes of the virtual disk the file stores; the tree's sizes add up to this plus the file's overhead. */
  storedBytes: number;
  /** False for .zst images, whose stored ranges would need decoding everything: every byte counts as stored. */
  storedKnown: boolean;
  root: SizeNode;
  storePaths: StorePathRow[];
  /** Where the references come from, null when the image holds no store. */
  referencesSource: string | null;
  warnings: string[];
}

export function sizeReport(image: string, opts: ReportOptions = {}): SizeReport {
  const c = collectImage(image, opts);
  const plan = planSizes(c.layout);
  const overhead = plan.root.children?.find((k) => k.kind === 'overhead')?.size ?? 0;
  return {
    image,
    format: c.format,
    description: c.description,
    virtualSize: c.virtualSize,
    allocatedSize: c.allocatedSize,
    storedBytes: plan.root.size - overhead,
    storedKnown: c.storedKnown,
    root: plan.root,
    storePaths: closureSizes(plan.storePaths, c.references),
    referencesSource: c.references?.source ?? null,
    warnings: [...c.warnings, ...plan.warnings],
  };
}

/** Writes the report page of `image` to `out` (default IMAGE.html beside it), whole or not at all. */
export function writeReportPage(image: string, out = `${image}.html`, opts: ReportOptions = {}): { path: string; report: SizeReport } {
  const report = sizeReport(image, opts);
  writeSmallFile(out, 'report', renderHtml(report));
  return { path: out, report };
}
