// Sizes are IEC everywhere: 512M is 512 MiB, as the docs say.
const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Parses "4096", "512M", "1.5G", "2GiB"; returns null for anything else. */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  if (!m) return null;
  const bytes = Number(m[1]) * UNITS[m[2].toUpperCase()];
  return Number.isSafeInteger(Math.round(bytes)) ? Math.round(bytes) : null;
}

export function formatSize(bytes: number): string {
  for (const [u, n] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= n) return `${(bytes / n).toFixed(bytes % n === 0 ? 0 : 1)} ${u}`;
  }
  return `${bytes} B`;
}
