// ext4 directory-index (htree) name hash, bit-compatible with e2fsprogs'
// ext2fs_dirhash() and the kernel's ext4fs_dirhash() for the three classic
// algorithms: legacy (0), half_md4 (1) and tea (2). Each exists in a
// signed-char and an unsigned-char flavour (on-disk versions 3, 4, 5 are the
// unsigned ones); the flavour only matters for name bytes >= 0x80, which the
// signed variants sign-extend before mixing. Which flavour a filesystem uses
// is recorded in the superblock flags (EXT2_FLAGS_SIGNED_HASH /
// EXT2_FLAGS_UNSIGNED_HASH).
//
// The result's `hash` has bit 0 cleared (htree uses that bit as a collision
// continuation marker). e2fsprogs stops there; the kernel additionally remaps
// the one value 0xfffffffe (the 32-bit EOF marker) to 0xfffffffc. We follow
// e2fsprogs, which is what e2fsck verifies index blocks against; the two only
// disagree for names whose hash is exactly 0xfffffffe.
//
// Everything runs in int32 arithmetic on module-level scratch arrays, so a
// call allocates nothing but its result object.

export type DirhashVersion = 0 | 1 | 2;

export interface Dirhash {
  hash: number;
  minor: number;
}

// Default seed: the MD4 initial chaining values, used when the seed is
// missing or all zero.
const MD4_INIT_A = 0x67452301 | 0;
const MD4_INIT_B = 0xefcdab89 | 0;
const MD4_INIT_C = 0x98badcfe | 0;
const MD4_INIT_D = 0x10325476 | 0;

const K2 = 0x5a827999 | 0; // MD4 round-2 constant (sqrt 2)
const K3 = 0x6ed9eba1 | 0; // MD4 round-3 constant (sqrt 3)
const TEA_DELTA = 0x9e3779b9 | 0;

const state = new Int32Array(4); // chaining state shared by the transforms
const block = new Int32Array(8); // one message block (8 words for MD4, 4 for TEA)

/**
 * Compute the htree hash of `name` (raw bytes, no trailing NUL).
 * `seed` is the superblock's s_hash_seed as four host-order words (each the
 * little-endian u32 at byte offset 4*i of the on-disk field); null or all
 * zero selects the default seed. Returns unsigned 32-bit values; `minor` is 0
 * for the legacy algorithm.
 */
export function dirhash(
  name: Uint8Array,
  version: DirhashVersion,
  unsigned: boolean,
  seed: Uint32Array | null,
): Dirhash {
  let hash: number;
  let minor = 0;

  if (version === 0) {
    hash = legacyHash(name, unsigned);
  } else if (version === 1 || version === 2) {
    if (seed !== null && (seed[0] | seed[1] | seed[2] | seed[3]) !== 0) {
      state[0] = seed[0];
      state[1] = seed[1];
      state[2] = seed[2];
      state[3] = seed[3];
    } else {
      state[0] = MD4_INIT_A;
      state[1] = MD4_INIT_B;
      state[2] = MD4_INIT_C;
      state[3] = MD4_INIT_D;
    }
    const len = name.length;
    if (version === 1) {
      for (let off = 0; off < len; off += 32) {
        fillBlock(name, off, len - off, 8, unsigned);
        halfMd4Transform();
      }
      hash = state[1];
      minor = state[2];
    } else {
      for (let off = 0; off < len; off += 16) {
        fillBlock(name, off, len - off, 4, unsigned);
        teaTransform();
      }
      hash = state[0];
      minor = state[1];
    }
  } else {
    throw new RangeError(`dirhash: unsupported hash version ${String(version)}`);
  }

  return { hash: (hash & ~1) >>> 0, minor: minor >>> 0 };
}

// Daniel Phillips' original "dx_hack_hash".
function legacyHash(name: Uint8Array, unsigned: boolean): number {
  let h0 = 0x12a3fe2d;
  let h1 = 0x37abe8f9;
  for (let i = 0; i < name.length; i++) {
    const c = unsigned ? name[i] : (name[i] << 24) >> 24;
    let h = (h1 + (h0 ^ Math.imul(c, 7152373))) | 0;
    if (h < 0) h = (h - 0x7fffffff) | 0; // top bit set: subtract 2^31 - 1
    h1 = h0;
    h0 = h;
  }
  return h0 << 1;
}

// Pack up to num*4 bytes of name[off..] big-endian-within-word into `block`,
// padding with a word built from the remaining length (`remaining` is the
// number of bytes left from `off` to the end of the whole name, as in C).
function fillBlock(name: Uint8Array, off: number, remaining: number, num: number, unsigned: boolean): void {
  let pad = remaining | (remaining << 8);
  pad |= pad << 16;
  const n = remaining < num * 4 ? remaining : num * 4;
  let val = pad;
  let k = 0;
  for (let i = 0; i < n; i++) {
    const b = name[off + i];
    const c = unsigned ? b : (b << 24) >> 24;
    val = (c + (val << 8)) | 0;
    if ((i & 3) === 3) {
      block[k++] = val;
      val = pad;
    }
  }
  if (k < num) block[k++] = val;
  while (k < num) block[k++] = pad;
}

// MD4 with the third round cut short, returning the whole chaining state.
function halfMd4Transform(): void {
  let a = state[0];
  let b = state[1];
  let c = state[2];
  let d = state[3];
  const x0 = block[0], x1 = block[1], x2 = block[2], x3 = block[3];
  const x4 = block[4], x5 = block[5], x6 = block[6], x7 = block[7];
  let t: number;

  // Round 1: F(x, y, z) = z ^ (x & (y ^ z))
  t = (a + (d ^ (b & (c ^ d))) + x0) | 0; a = (t << 3) | (t >>> 29);
  t = (d + (c ^ (a & (b ^ c))) + x1) | 0; d = (t << 7) | (t >>> 25);
  t = (c + (b ^ (d & (a ^ b))) + x2) | 0; c = (t << 11) | (t >>> 21);
  t = (b + (a ^ (c & (d ^ a))) + x3) | 0; b = (t << 19) | (t >>> 13);
  t = (a + (d ^ (b & (c ^ d))) + x4) | 0; a = (t << 3) | (t >>> 29);
  t = (d + (c ^ (a & (b ^ c))) + x5) | 0; d = (t << 7) | (t >>> 25);
  t = (c + (b ^ (d & (a ^ b))) + x6) | 0; c = (t << 11) | (t >>> 21);
  t = (b + (a ^ (c & (d ^ a))) + x7) | 0; b = (t << 19) | (t >>> 13);

  // Round 2: G(x, y, z) = (x & y) + ((x ^ y) & z)
  t = (a + ((b & c) + ((b ^ c) & d)) + x1 + K2) | 0; a = (t << 3) | (t >>> 29);
  t = (d + ((a & b) + ((a ^ b) & c)) + x3 + K2) | 0; d = (t << 5) | (t >>> 27);
  t = (c + ((d & a) + ((d ^ a) & b)) + x5 + K2) | 0; c = (t << 9) | (t >>> 23);
  t = (b + ((c & d) + ((c ^ d) & a)) + x7 + K2) | 0; b = (t << 13) | (t >>> 19);
  t = (a + ((b & c) + ((b ^ c) & d)) + x0 + K2) | 0; a = (t << 3) | (t >>> 29);
  t = (d + ((a & b) + ((a ^ b) & c)) + x2 + K2) | 0; d = (t << 5) | (t >>> 27);
  t = (c + ((d & a) + ((d ^ a) & b)) + x4 + K2) | 0; c = (t << 9) | (t >>> 23);
  t = (b + ((c & d) + ((c ^ d) & a)) + x6 + K2) | 0; b = (t << 13) | (t >>> 19);

  // Round 3: H(x, y, z) = x ^ y ^ z
  t = (a + (b ^ c ^ d) + x3 + K3) | 0; a = (t << 3) | (t >>> 29);
  t = (d + (a ^ b ^ c) + x7 + K3) | 0; d = (t << 9) | (t >>> 23);
  t = (c + (d ^ a ^ b) + x2 + K3) | 0; c = (t << 11) | (t >>> 21);
  t = (b + (c ^ d ^ a) + x6 + K3) | 0; b = (t << 15) | (t >>> 17);
  t = (a + (b ^ c ^ d) + x1 + K3) | 0; a = (t << 3) | (t >>> 29);
  t = (d + (a ^ b ^ c) + x5 + K3) | 0; d = (t << 9) | (t >>> 23);
  t = (c + (d ^ a ^ b) + x0 + K3) | 0; c = (t << 11) | (t >>> 21);
  t = (b + (c ^ d ^ a) + x4 + K3) | 0; b = (t << 15) | (t >>> 17);

  state[0] = (state[0] + a) | 0;
  state[1] = (state[1] + b) | 0;
  state[2] = (state[2] + c) | 0;
  state[3] = (state[3] + d) | 0;
}

// 16 rounds of TEA in a Davies-Meyer construction; only the first two state
// words take part.
function teaTransform(): void {
  let b0 = state[0];
  let b1 = state[1];
  const a = block[0], b = block[1], c = block[2], d = block[3];
  let sum = 0;
  for (let n = 0; n < 16; n++) {
    sum = (sum + TEA_DELTA) | 0;
    b0 = (b0 + ((((b1 << 4) + a) | 0) ^ ((b1 + sum) | 0) ^ (((b1 >>> 5) + b) | 0))) | 0;
    b1 = (b1 + ((((b0 << 4) + c) | 0) ^ ((b0 + sum) | 0) ^ (((b0 >>> 5) + d) | 0))) | 0;
  }
  state[0] = (state[0] + b0) | 0;
  state[1] = (state[1] + b1) | 0;
}
