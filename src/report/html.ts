// The size report as one self-contained HTML page: style, script and data
// inline (the data as a JSON block the script reads), nothing fetched.
import { formatSize } from '../util/sizes.ts';
import type { NodeKind, SizeNode } from './plan.ts';
import type { SizeReport } from './report.ts';
import { PAGE_SCRIPT, PAGE_STYLE } from './page.ts';

const KINDS: readonly NodeKind[] = [
  'disk', 'table', 'partition', 'filesystem', 'metadata', 'free', 'slack', 'unpartitioned', 'overhead', 'dir', 'file', 'store', 'store-path', 'other',
];

type Packed = [string, number, number, number, Packed[]?];

/** A node as [name, kind index, size, span, children?]: a third of the bytes of objects with keys. */
function pack(n: SizeNode): Packed {
  const out: Packed = [n.name, KINDS.indexOf(n.kind), n.size, n.span];
  if (n.children) out.push(n.children.map(pack));
  return out;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** JSON that cannot end the script element it sits in. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

const sized = (n: number) => `${formatSize(n)} (${n} bytes)`;

export function renderHtml(r: SizeReport): string {
  const data = {
    kinds: KINDS,
    tree: pack(r.root),
    storePaths: r.storePaths.map((p) => [p.path, p.size, p.span, p.narSize, p.closureSize, p.closureSpan, p.closureCount]),
  };
  const overhead = r.allocatedSize - r.storedBytes;
  const summary = [
    `${escapeHtml(r.description)}`,
    `virtual size ${sized(r.virtualSize)}`,
    `allocated ${sized(r.allocatedSize)}`,
    r.storedKnown ? `disk bytes stored ${sized(r.storedBytes)}` : 'compressed: sizes are the decompressed bytes',
    ...(r.storedKnown && overhead > 0 ? [`file overhead ${sized(overhead)}`] : []),
    ...(r.storedKnown && overhead < 0 ? [`the stored bytes take ${sized(-overhead)} less in the file (compressed clusters)`] : []),
  ];
  const legend = (['partition', 'filesystem', 'metadata', 'free', 'dir', 'file', 'store', 'store-path', 'table', 'overhead'] as const)
    .map((k) => `<span><i class="swatch" data-kind="${k}"></i>${k}</span>`).join('');
  const store = r.storePaths.length === 0
    ? '<p>No Nix store paths found.</p>'
    : `<p>Sizes are the bytes each store path takes in the image (its blocks, extent trees included); closure: the path and everything it references, transitively (like <code>nix path-info -rsS</code>). References from ${escapeHtml(r.referencesSource ?? 'nowhere')}.</p>
<table id="store-paths"><thead><tr><th class="path">store path</th><th>size</th><th>virtual</th><th>NAR size</th><th>closure size</th><th>closure virtual</th><th>closure paths</th></tr></thead><tbody></tbody></table>`;
  const warnings = r.warnings.length === 0 ? '' : `<ul class="warnings">${r.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>Where the bytes go: ${escapeHtml(r.image)}</title>
<style>${PAGE_STYLE}</style></head>
<body>
<h1>Where the bytes go: ${escapeHtml(r.image)}</h1>
<p class="summary">${summary.map((s) => `<span>${s}</span>`).join('')}</p>
${warnings}
<div id="controls"><label>Box sizes: <select id="metric"><option value="size">bytes the image file stores (adds up to the allocated size)</option><option value="span">bytes of the virtual disk</option></select></label>
<span class="legend">${legend}</span></div>
<nav id="breadcrumb"></nav>
<div id="treemap"></div>
<h2>Largest store paths</h2>
${store}
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
