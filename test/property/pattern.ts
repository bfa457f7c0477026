// File bytes for property tests: xorshift, so content is cheap, varied and
// the same for the same seed.
export function pattern(seed: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
