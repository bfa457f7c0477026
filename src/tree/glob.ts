// Source globbing for contents lists, as make-disk-image's `for fn in $source`
// does: `*` and `?` match within one path component, never a leading dot
// (bash's default); matches come back sorted bytewise, never in the host's
// readdir or locale order.
import * as fs from 'node:fs';
import * as path from 'node:path';

export function hasGlob(pattern: string): boolean {
  return /[*?]/.test(pattern);
}

function componentRegex(component: string): RegExp {
  const body = component.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.');
  return new RegExp(`^${body}$`, 's');
}

/** Every existing path matching `pattern` (absolute), sorted by UTF-8 bytes. */
export function expandGlob(pattern: string): string[] {
  const parts = pattern.split('/');
  let bases = [parts[0] === '' ? '/' : parts[0]];
  for (const part of parts.slice(1)) {
    if (part === '') continue;
    const next: string[] = [];
    for (const b of bases) {
      if (!hasGlob(part)) {
        const p = path.join(b, part);
        if (fs.existsSync(p) || isLink(p)) next.push(p);
        continue;
      }
      let names: string[];
      try {
        names = fs.readdirSync(b);
      } catch {
        continue;
      }
      const re = componentRegex(part);
      for (const n of names) if (!n.startsWith('.') && re.test(n)) next.push(path.join(b, n));
    }
    bases = next;
  }
  return bases.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
