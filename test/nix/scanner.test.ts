// The reference scanner: every 32-byte window of the stream, whatever the chunking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReferenceScanner, derivationInputs } from '../../src/nix/references.ts';
import { NIX32_ALPHABET, toNix32 } from '../../src/nix/base32.ts';
import { createHash } from 'node:crypto';

const H1 = '0123456789abcdfghijklmnpqrsvwxyz';
const H2 = 'zyxwvsrqpnmlkjihgfdcba9876543210';
const H3 = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';

// Enough extra candidates that the scanner uses its prefix bit set.
const MANY = new Set([H1, H2, H3, ...Array.from({ length: 400 }, (_, i) => toNix32(createHash('sha1').update(String(i)).digest()))]);

function scan(chunks: Buffer[], hashes: string[] | Set<string>): string[] {
  const s = new ReferenceScanner(hashes);
  for (const c of chunks) s.update(c);
  return [...s.found].sort();
}

test('a hash split across two chunks at any point is found', () => {
  const data = Buffer.from(`\0\0prefix/${H1}-name\nmore`);
  for (let cut = 0; cut <= data.length; cut++) {
    assert.deepEqual(scan([data.subarray(0, cut), data.subarray(cut)], [H1, H2]), [H1], `cut at ${cut}`);
    assert.deepEqual(scan([data.subarray(0, cut), data.subarray(cut)], MANY), [H1], `cut at ${cut}, many candidates`);
  }
});

test('a hash spread over many tiny chunks is found', () => {
  const data = Buffer.from(`x${H2}y`);
  const chunks = [...data].map((b) => Buffer.from([b]));
  assert.deepEqual(scan(chunks, [H1, H2]), [H2]);
});

test('near misses are not references', () => {
  const broken = H1.slice(0, 16) + '\0' + H1.slice(16);
  assert.deepEqual(scan([Buffer.from(broken)], [H1]), []);
  assert.deepEqual(scan([Buffer.from(H1.slice(0, 31))], [H1]), []);
  // Inside a longer run of nix32 characters a hash still counts (Nix scans windows).
  assert.deepEqual(scan([Buffer.from('abc' + H3 + 'zzz')], [H3]), [H3]);
});

test('matches a naive search over every window, for random streams and chunkings', () => {
  const hashes = [H1, H2, H3];
  const piece = fc.oneof(
    fc.constantFrom(...hashes),
    fc.string({ unit: fc.constantFrom(...NIX32_ALPHABET, '/', '-', '\0', 'E'), maxLength: 40 }),
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 12 }), fc.array(fc.nat(200), { maxLength: 8 }), (pieces, cuts) => {
      const data = Buffer.from(pieces.join(''), 'latin1');
      const text = data.toString('latin1');
      const expected = hashes.filter((h) => text.includes(h)).sort();
      const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let at = 0;
      for (const p of points) {
        chunks.push(data.subarray(at, p));
        at = p;
      }
      chunks.push(data.subarray(at));
      assert.deepEqual(scan(chunks, hashes), expected);
      assert.deepEqual(scan(chunks, MANY), expected, 'with the prefix bit set');
    }),
    { numRuns: 300, seed: 5 },
  );
});

test('derivationInputs reads the input derivations and sources of a .drv', () => {
  const drv = 'Derive([("dev","/nix/store/' + H1 + '-x-dev","",""),("out","/nix/store/' + H2 + '-x","","")],[("/nix/store/' + H3 + '-y.drv",["out"])],["/nix/store/' + H1.replace('0', 'z') + '-src"],"x86_64-linux","/bin/sh",["-c","echo \\"hi\\" ),[]"],[("out","/nix/store/' + H2 + '-x")])';
  assert.deepEqual(derivationInputs(drv), [`/nix/store/${H3}-y.drv`, `/nix/store/${H1.replace('0', 'z')}-src`]);
  assert.equal(derivationInputs('not a derivation'), null);
  assert.equal(derivationInputs('Derive([("out"'), null);
});
