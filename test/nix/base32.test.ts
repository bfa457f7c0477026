// Nix's base-32 and the sha256 encodings, against nix-hash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fromNix32, toNix32, nix32Length } from '../../src/nix/base32.ts';
import { formatSha256, parseSha256 } from '../../src/nix/hash.ts';
import { requireNix } from './nixstore.ts';

function nixHashToBase32(type: string, hex: string[]): string[] {
  const r = spawnSync('nix-hash', ['--type', type, '--to-base32', ...hex], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n');
}

test('nix32 matches nix-hash --to-base32 for sha256, sha1 and md5 digests', () => {
  requireNix();
  for (const [type, bytes] of [['sha256', 32], ['sha1', 20], ['md5', 16]] as const) {
    const digests = [Buffer.alloc(bytes), Buffer.alloc(bytes, 0xff), ...Array.from({ length: 40 }, () => randomBytes(bytes))];
    const expected = nixHashToBase32(type, digests.map((d) => d.toString('hex')));
    digests.forEach((d, i) => {
      assert.equal(toNix32(d), expected[i], `${type} ${d.toString('hex')}`);
      assert.equal(toNix32(d).length, nix32Length(bytes));
      assert.deepEqual(fromNix32(expected[i], bytes), d);
    });
  }
});

test('fromNix32 rejects wrong lengths, foreign characters and bits past the end', () => {
  const s = toNix32(randomBytes(32));
  assert.equal(fromNix32(s.slice(1), 32), null);
  assert.equal(fromNix32('e' + s.slice(1), 32), null); // e, o, u, t are not in the alphabet
  assert.equal(fromNix32('u' + s.slice(1), 32), null);
  // 52 characters carry 260 bits; the first character's top bits must be 0.
  assert.notEqual(fromNix32('1' + s.slice(1), 32), null);
  assert.equal(fromNix32('z' + s.slice(1), 32), null);
});

test('sha256 encodings round-trip and parse as Nix writes them', () => {
  const d = createHash('sha256').update('diskwright').digest();
  for (const f of ['nix32', 'base16', 'sri'] as const) assert.deepEqual(parseSha256(formatSha256(d, f)), d, f);
  assert.deepEqual(parseSha256(d.toString('hex')), d, 'bare base-16 (nix-store --dump-db)');
  assert.deepEqual(parseSha256(toNix32(d)), d, 'bare nix32');
  assert.equal(parseSha256('sha256:xyz'), null);
  assert.equal(parseSha256('md5:' + d.toString('hex')), null);
  assert.equal(parseSha256('sha256-' + d.toString('hex')), null);
});
