// sha256 digests as Nix writes them: `sha256:<nix32>` (nix-store -q --hash,
// closureInfo's registration), bare base-16 (nix-store --dump-db) and SRI
// `sha256-<base64>` (nix path-info --json).
import { fromNix32, toNix32 } from './base32.ts';

export type HashFormat = 'nix32' | 'base16' | 'sri';

export function formatSha256(digest: Uint8Array, format: HashFormat = 'nix32'): string {
  const b = Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength);
  switch (format) {
    case 'nix32':
      return `sha256:${toNix32(b)}`;
    case 'base16':
      return `sha256:${b.toString('hex')}`;
    case 'sri':
      return `sha256-${b.toString('base64')}`;
  }
}

const HEX = /^[0-9a-f]{64}$/i;
const B64 = /^[A-Za-z0-9+/]{43}=$/;

/** A sha256 digest in any of the encodings Nix reads, with or without the `sha256:` prefix; null if it is none of them. */
export function parseSha256(text: string): Buffer | null {
  let body = text;
  if (text.startsWith('sha256-')) {
    body = text.slice(7);
    return B64.test(body) ? Buffer.from(body, 'base64') : null;
  }
  if (text.startsWith('sha256:')) body = text.slice(7);
  if (body.length === 64) return HEX.test(body) ? Buffer.from(body, 'hex') : null;
  if (body.length === 52) return fromNix32(body, 32);
  if (body.length === 44) return B64.test(body) ? Buffer.from(body, 'base64') : null;
  return null;
}
