// CRC-32C (Castagnoli), the checksum behind every ext4 metadata_csum field.
//
// `crc32c(crc, data)` is the raw reflected CRC update, the same contract as
// the kernel's crc32c_le() and e2fsprogs' ext2fs_crc32c_le(): the caller's
// `crc` goes in as-is and the register comes out as-is; there is no pre- or
// post-inversion. ext4 seeds with 0xffffffff (~0) and stores the result
// without inverting it. The textbook CRC-32C value is
// `~crc32c(0xffffffff, data) >>> 0`.
//
// Speed matters: this runs over every metadata block of multi-gigabyte
// images. The bulk path is slicing-by-16: 16 lookup tables let one step fold
// 16 input bytes with 16 independent table reads. On little-endian hosts
// (every platform Node ships for in practice) the aligned middle of the input
// is read as 32-bit words through an Int32Array view; elsewhere the bytes are
// assembled by hand. Tables are Int32Array so V8 keeps every value a small
// integer (a Uint32Array element >= 2^31 would be a heap double).

const POLY = 0x82f63b78; // reflected 0x1EDC6F41

const TABLES = new Int32Array(16 * 256);
{
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    TABLES[n] = c;
  }
  // TABLES[k][n] is the CRC of byte n followed by k zero bytes.
  for (let k = 1; k < 16; k++) {
    for (let n = 0; n < 256; n++) {
      const prev = TABLES[(k - 1) * 256 + n];
      TABLES[k * 256 + n] = (prev >>> 8) ^ TABLES[prev & 0xff];
    }
  }
}

// Separate views so each lookup is a plain constant-table index.
const T0 = TABLES.subarray(0 * 256, 1 * 256);
const T1 = TABLES.subarray(1 * 256, 2 * 256);
const T2 = TABLES.subarray(2 * 256, 3 * 256);
const T3 = TABLES.subarray(3 * 256, 4 * 256);
const T4 = TABLES.subarray(4 * 256, 5 * 256);
const T5 = TABLES.subarray(5 * 256, 6 * 256);
const T6 = TABLES.subarray(6 * 256, 7 * 256);
const T7 = TABLES.subarray(7 * 256, 8 * 256);
const T8 = TABLES.subarray(8 * 256, 9 * 256);
const T9 = TABLES.subarray(9 * 256, 10 * 256);
const T10 = TABLES.subarray(10 * 256, 11 * 256);
const T11 = TABLES.subarray(11 * 256, 12 * 256);
const T12 = TABLES.subarray(12 * 256, 13 * 256);
const T13 = TABLES.subarray(13 * 256, 14 * 256);
const T14 = TABLES.subarray(14 * 256, 15 * 256);
const T15 = TABLES.subarray(15 * 256, 16 * 256);

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// Below this many bytes, building a word view costs more than it saves.
const WORD_PATH_MIN = 64;

/**
 * Raw CRC-32C update over `data[start, end)`. No inversion on entry or exit;
 * returns an unsigned 32-bit number. Chunks chain:
 * `crc32c(crc32c(c, a), b) === crc32c(c, a ++ b)`.
 */
export function crc32c(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  if (start < 0 || end > data.length || start > end) {
    throw new RangeError(`crc32c: range [${start}, ${end}) outside buffer of ${data.length} bytes`);
  }
  let c = crc | 0;
  let i = start;
  if (LITTLE_ENDIAN && end - i >= WORD_PATH_MIN) {
    // Byte-step up to a 4-byte boundary of the underlying ArrayBuffer.
    while (((data.byteOffset + i) & 3) !== 0) {
      c = (c >>> 8) ^ T0[(c ^ data[i++]) & 0xff];
    }
    const words = ((end - i) >>> 4) << 2; // whole 16-byte steps, in words
    const w = new Int32Array(data.buffer, data.byteOffset + i, words);
    for (let j = 0; j < words; j += 4) {
      const a = c ^ w[j];
      const b = w[j + 1];
      const d = w[j + 2];
      const e = w[j + 3];
      c =
        T15[a & 0xff] ^ T14[(a >>> 8) & 0xff] ^ T13[(a >>> 16) & 0xff] ^ T12[a >>> 24] ^
        T11[b & 0xff] ^ T10[(b >>> 8) & 0xff] ^ T9[(b >>> 16) & 0xff] ^ T8[b >>> 24] ^
        T7[d & 0xff] ^ T6[(d >>> 8) & 0xff] ^ T5[(d >>> 16) & 0xff] ^ T4[d >>> 24] ^
        T3[e & 0xff] ^ T2[(e >>> 8) & 0xff] ^ T1[(e >>> 16) & 0xff] ^ T0[e >>> 24];
    }
    i += words << 2;
  } else {
    while (end - i >= 16) {
      const a = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
      c =
        T15[a & 0xff] ^ T14[(a >>> 8) & 0xff] ^ T13[(a >>> 16) & 0xff] ^ T12[a >>> 24] ^
        T11[data[i + 4]] ^ T10[data[i + 5]] ^ T9[data[i + 6]] ^ T8[data[i + 7]] ^
        T7[data[i + 8]] ^ T6[data[i + 9]] ^ T5[data[i + 10]] ^ T4[data[i + 11]] ^
        T3[data[i + 12]] ^ T2[data[i + 13]] ^ T1[data[i + 14]] ^ T0[data[i + 15]];
      i += 16;
    }
  }
  while (i < end) {
    c = (c >>> 8) ^ T0[(c ^ data[i++]) & 0xff];
  }
  return c >>> 0;
}

const WORD = Buffer.alloc(4);

/** crc32c over one little-endian 32-bit value, without allocating. */
export function crc32cU32(crc: number, value: number): number {
  WORD.writeUInt32LE(value >>> 0, 0);
  return crc32c(crc, WORD, 0, 4);
}
