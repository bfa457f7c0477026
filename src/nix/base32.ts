// Nix's base-32 ("nix32"): the alphabet leaves out e, o, u and t, and the
// digits are taken from the hash's *last* 5-bit group first, so the string
// reads "backwards" compared with RFC 4648. A sha256 digest (32 bytes) is 52
// characters; a store path's hash part (20 bytes) is 32.
//
// Character i of the output (counting from the left, n characters in all)
// holds bits [5*(n-1-i), 5*(n-1-i)+5) of the digest read as a little-endian
// bit string (bit k is bit k%8 of byte k/8).

export const NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

/** Each byte's digit value, or -1 for bytes outside the alphabet. */
export const NIX32_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < NIX32_ALPHABET.length; i++) NIX32_VALUE[NIX32_ALPHABET.charCodeAt(i)] = i;
const VALUE = NIX32_VALUE;

/** True for the bytes that may appear in a nix32 string (a lookup table, for the reference scanner). */
export const IS_NIX32 = new Uint8Array(256);
for (let i = 0; i < NIX32_ALPHABET.length; i++) IS_NIX32[NIX32_ALPHABET.charCodeAt(i)] = 1;

/** Characters needed for `bytes` bytes: ceil(8 * bytes / 5). */
export function nix32Length(bytes: number): number {
  return Math.ceil((bytes * 8) / 5);
}

export function toNix32(digest: Uint8Array): string {
  const n = nix32Length(digest.length);
  let out = '';
  for (let i = n - 1; i >= 0; i--) {
    const bit = i * 5;
    const byte = bit >> 3;
    const shift = bit & 7;
    const lo = digest[byte] >> shift;
    const hi = byte + 1 < digest.length ? digest[byte + 1] << (8 - shift) : 0;
    out += NIX32_ALPHABET[(lo | hi) & 0x1f];
  }
  return out;
}

/**
 * The digest of `bytes` bytes that `text` encodes, or null when `text` has the
 * wrong length, a character outside the alphabet, or bits set beyond the
 * digest's end (Nix rejects those too).
 */
export function fromNix32(text: string, bytes: number): Buffer | null {
  if (text.length !== nix32Length(bytes)) return null;
  const out = Buffer.alloc(bytes);
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const v = VALUE[text.charCodeAt(i) & 0xff];
    if (v < 0 || text.charCodeAt(i) > 0xff) return null;
    const bit = (n - 1 - i) * 5;
    const byte = bit >> 3;
    const shift = bit & 7;
    out[byte] |= (v << shift) & 0xff;
    const carry = v >> (8 - shift);
    if (byte + 1 < bytes) out[byte + 1] |= carry;
    else if (carry !== 0) return null;
  }
  return out;
}
