// Short (8.3) names for long names. Spec: fatgen103 section 6.1 (short name
// characters) and the "Basis-Name Generation Algorithm" and "Numeric-Tail
// Generation Algorithm" of its long-name section; the choices below are the
// Linux vfat driver's (shortname=mixed, its default), except for numeric tails:
// Linux tries ~1..~9 and then random hex digits, we keep counting (~10, ~11, ...
// with the base cut shorter), so the result depends only on the names.

/** Characters a short name may hold besides A-Z and 0-9 (fatgen103 6.1). */
const SHORT_SPECIALS = "$%'-_@~`!(){}^#&";

export interface Basis {
  /** Upper-case ASCII, at most 8 characters (before any tail). */
  base: string;
  /** At most 3 characters. */
  ext: string;
  /** Something was dropped, replaced or cut: the short name needs a numeric tail. */
  lossy: boolean;
  /** The long name has lower-case letters: it must be stored as a long name too. */
  lower: boolean;
}

function convert(part: string, max: number, info: { lossy: boolean; lower: boolean }): string {
  let out = '';
  for (const ch of part) {
    let c: string;
    if (ch === '.' || ch === ' ') { info.lossy = true; continue; }
    if (ch >= 'a' && ch <= 'z') { info.lower = true; c = ch.toUpperCase(); }
    else if ((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || SHORT_SPECIALS.includes(ch)) c = ch;
    // + , ; = [ ] (valid only in long names) and everything outside ASCII: short
    // names stay ASCII, so they never depend on an OEM code page; the long name keeps the text.
    else { info.lossy = true; c = '_'; }
    if (out.length === max) { info.lossy = true; break; }
    out += c;
  }
  return out;
}

/**
 * The basis name (fatgen103's algorithm, as Linux vfat applies it): the
 * extension is what follows the last dot, unless only dots and spaces precede
 * that dot (".bashrc" has none); dots and spaces are dropped; letters are
 * upper-cased; characters short names cannot hold become '_'.
 */
export function basisName(long: string): Basis {
  const info = { lossy: false, lower: false };
  const dot = long.lastIndexOf('.');
  const hasExt = dot > 0 && /[^. ]/.test(long.slice(0, dot));
  const base = convert(hasExt ? long.slice(0, dot) : long, 8, info);
  const ext = hasExt ? convert(long.slice(dot + 1), 3, info) : '';
  return { base: base || '_', ext, lossy: info.lossy || base === '', lower: info.lower };
}

/** The 11-byte on-disk form: base and extension padded with spaces. */
export function shortNameBytes(base: string, ext: string): Buffer {
  return Buffer.from(base.padEnd(8, ' ') + ext.padEnd(3, ' '), 'latin1');
}

export interface ShortName {
  name: Buffer;
  /** Whether a long name must be stored (the short one alone would not give the name back). */
  needsLfn: boolean;
}

/**
 * Short names for all entries of one directory, given in bytewise name order.
 * Names that convert without loss keep their basis (no tail); the others get
 * the first free tail ~1, ~2, ... in that order, so the result is deterministic.
 * Returns null when some basis runs out of tails (~999999).
 */
export function assignShortNames(longNames: string[]): ShortName[] | null {
  const bases = longNames.map(basisName);
  const taken = new Set<string>();
  const out: ShortName[] = new Array(longNames.length);
  bases.forEach((b, i) => {
    if (b.lossy) return;
    out[i] = { name: shortNameBytes(b.base, b.ext), needsLfn: b.lower };
    taken.add(out[i].name.toString('latin1'));
  });
  // Where each basis's tail search resumes, so many collisions stay linear.
  const nextTail = new Map<string, number>();
  for (let i = 0; i < bases.length; i++) {
    const b = bases[i];
    if (!b.lossy) continue;
    const key = `${b.base}.${b.ext}`;
    let n = nextTail.get(key) ?? 1;
    for (; ; n++) {
      if (n > 999_999) return null;
      const tail = `~${n}`;
      const name = shortNameBytes(b.base.slice(0, 8 - tail.length) + tail, b.ext);
      const k = name.toString('latin1');
      if (taken.has(k)) continue;
      taken.add(k);
      out[i] = { name, needsLfn: true };
      break;
    }
    nextTail.set(key, n + 1);
  }
  return out;
}
