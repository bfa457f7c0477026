// Seeded identity. One seed per build; every UUID, GUID, volume ID, disk
// signature and hash seed the user did not give is HMAC-SHA256(seed, purpose)
// shaped into the form it needs. Same seed + same purpose => same bytes, so
// images are reproducible; different purposes give independent values.

import { createHmac } from 'node:crypto';

const SHA256_BYTES = 32;

/**
 * `length` deterministic bytes for (seed, purpose). The first 32 bytes are
 * exactly HMAC-SHA256(key = seed, message = purpose); longer outputs append
 * blocks HMAC-SHA256(seed, purpose || 0x00 || counter_be32) for counter =
 * 1, 2, ... (the zero byte keeps these from colliding with another purpose's
 * first block as long as purposes contain no NUL).
 */
export function seededBytes(seed: string, purpose: string, length: number): Buffer {
  if (!Number.isInteger(length) || length < 0) {
    throw new RangeError(`seededBytes: invalid length ${length}`);
  }
  const out = Buffer.alloc(length);
  let filled = 0;
  for (let counter = 0; filled < length; counter++) {
    const h = createHmac('sha256', seed);
    h.update(purpose, 'utf8');
    if (counter > 0) {
      const suffix = Buffer.alloc(5);
      suffix.writeUInt32BE(counter, 1);
      h.update(suffix);
    }
    const block = h.digest();
    filled += block.copy(out, filled, 0, Math.min(SHA256_BYTES, length - filled));
  }
  return out;
}

/**
 * A 16-byte RFC 4122 version-4 (random) UUID for (seed, purpose), in RFC
 * (big-endian) byte order, the order ext4 keeps s_uuid in.
 */
export function seededUuid(seed: string, purpose: string): Buffer {
  const b = seededBytes(seed, purpose, 16);
  b[6] = (b[6] & 0x0f) | 0x40; // version 4
  b[8] = (b[8] & 0x3f) | 0x80; // variant 10xx
  return b;
}

/** An unsigned 32-bit number for (seed, purpose): the first four HMAC bytes, big-endian. */
export function seededU32(seed: string, purpose: string): number {
  return seededBytes(seed, purpose, 4).readUInt32BE(0);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Parse 8-4-4-4-12 hex (any case) into 16 bytes in text order; null if malformed. */
export function parseUuid(text: string): Buffer | null {
  if (typeof text !== 'string' || !UUID_RE.test(text)) return null;
  return Buffer.from(text.replaceAll('-', ''), 'hex');
}

/** Lowercase 8-4-4-4-12 text of 16 bytes, in byte order. */
export function formatUuid(bytes: Uint8Array): string {
  if (bytes.length !== 16) {
    throw new RangeError(`formatUuid: need 16 bytes, got ${bytes.length}`);
  }
  const h = Buffer.from(bytes.buffer, bytes.byteOffset, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
