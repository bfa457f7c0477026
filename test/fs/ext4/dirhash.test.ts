// Oracle test: every expected value comes from e2fsprogs' own debugfs
// (`dx_hash`), driven through a single `debugfs -f cmdfile` run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirhash, type DirhashVersion } from '../../../src/fs/ext4/dirhash.ts';

// Small deterministic PRNG so a failure reproduces.
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = mulberry32(0xd15c0001);
const randInt = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));

// Names debugfs can take on one command line: anything but NUL, LF and CR
// (the double quote is escaped by doubling inside a quoted token).
function randomName(len: number, highBytes: boolean): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) {
    let c: number;
    do {
      c = highBytes ? randInt(1, 255) : randInt(0x20, 0x7e);
    } while (c === 0x0a || c === 0x0d);
    b[i] = c;
  }
  if (highBytes && !b.some((x) => x >= 0x80)) b[0] = 0x80 | randInt(0, 127);
  return b;
}

const names: Buffer[] = [
  Buffer.from('.'),
  Buffer.from('..'),
  Buffer.from('lost+found'),
  Buffer.from('hello'),
  Buffer.from('-leading-dash'),
  Buffer.from('with "quotes" and spaces\t tab'),
  Buffer.from('caf\u00e9-\u65e5\u672c', 'utf8'),
  Buffer.from([0xff]),
  Buffer.from([0x80, 0x7f, 0xff, 0x01]),
  Buffer.alloc(255, 0xff),
  Buffer.alloc(255, 0x61),
];
// Every length 1..255 in both alphabets.
for (let len = 1; len <= 255; len++) {
  names.push(randomName(len, false));
  names.push(randomName(len, true));
}

function seedToUuid(seed: Uint32Array): string {
  const b = Buffer.alloc(16);
  for (let i = 0; i < 4; i++) b.writeUInt32LE(seed[i], i * 4);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const randomSeed = new Uint32Array([
  randInt(0, 0xffffffff) >>> 0,
  randInt(0, 0xffffffff) >>> 0,
  randInt(0, 0xffffffff) >>> 0,
  randInt(0, 0xffffffff) >>> 0,
]);
randomSeed[0] |= 1; // never all zero

interface Case {
  name: Buffer;
  version: DirhashVersion;
  unsigned: boolean;
  seed: Uint32Array | null;
}

const cases: Case[] = [];
for (const seed of [null, randomSeed]) {
  for (const version of [0, 1, 2] as const) {
    for (const unsigned of [false, true]) {
      for (const name of names) cases.push({ name, version, unsigned, seed });
    }
  }
}

interface Expected {
  hash: number;
  minor: number;
}

// One debugfs process for all cases. With no device argument debugfs opens no
// filesystem, so dx_hash's default seed is all zero. Hash versions 3..5 (the
// unsigned variants) have no names in e2p_string2hash, so they are passed as
// numbers, which dx_hash falls back to via atoi().
function runDebugfs(all: Case[]): Expected[] {
  const dir = mkdtempSync(join(tmpdir(), 'dw-dirhash-'));
  try {
    const lines: Buffer[] = [];
    for (const c of all) {
      const hv = c.version + (c.unsigned ? 3 : 0);
      const seedArg = c.seed ? ` -s ${seedToUuid(c.seed)}` : '';
      const quoted = Buffer.from(c.name.toString('latin1').replaceAll('"', '""'), 'latin1');
      lines.push(Buffer.from(`dx_hash -h ${hv}${seedArg} -- "`, 'latin1'), quoted, Buffer.from('"\n'));
    }
    const cmdFile = join(dir, 'cmds');
    writeFileSync(cmdFile, Buffer.concat(lines));
    const out = execFileSync('debugfs', ['-f', cmdFile], {
      maxBuffer: 256 << 20,
      stdio: ['ignore', 'pipe', 'pipe'],
    }).toString('latin1');
    const results: Expected[] = [];
    for (const line of out.split('\n')) {
      if (!line.startsWith('Hash of ')) continue;
      const m = / is 0x([0-9a-f]+) \(minor 0x([0-9a-f]+)\)$/.exec(line);
      assert.ok(m, `unparsable debugfs line: ${JSON.stringify(line)}`);
      results.push({ hash: parseInt(m[1], 16), minor: parseInt(m[2], 16) });
    }
    assert.equal(results.length, all.length, 'one debugfs result per dx_hash command');
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const expected = runDebugfs(cases);

const algName = ['legacy', 'half_md4', 'tea'];
for (const seedKind of ['zero seed', 'random seed'] as const) {
  for (const version of [0, 1, 2] as const) {
    for (const unsigned of [false, true]) {
      test(`${algName[version]}${unsigned ? '_unsigned' : ''} matches debugfs (${seedKind})`, () => {
        let checked = 0;
        for (let i = 0; i < cases.length; i++) {
          const c = cases[i];
          if (c.version !== version || c.unsigned !== unsigned || (c.seed === null) !== (seedKind === 'zero seed')) {
            continue;
          }
          const got = dirhash(c.name, c.version, c.unsigned, c.seed);
          const want = expected[i];
          if (got.hash !== want.hash || got.minor !== want.minor) {
            assert.fail(
              `name ${c.name.toString('hex')} (len ${c.name.length}): got ` +
                `${got.hash.toString(16)}/${got.minor.toString(16)}, debugfs ` +
                `${want.hash.toString(16)}/${want.minor.toString(16)}`,
            );
          }
          checked++;
        }
        assert.equal(checked, names.length);
      });
    }
  }
}

test('signed and unsigned flavours differ only when a byte is >= 0x80', () => {
  for (const version of [0, 1, 2] as const) {
    for (const name of names) {
      const s = dirhash(name, version, false, randomSeed);
      const u = dirhash(name, version, true, randomSeed);
      if (name.every((b) => b < 0x80)) assert.deepEqual(s, u);
    }
    const high = Buffer.from([0xe9, 0x41, 0xff]);
    assert.notDeepEqual(dirhash(high, version, false, null), dirhash(high, version, true, null));
  }
});

test('null seed and all-zero seed are the same default seed', () => {
  const zero = new Uint32Array(4);
  for (const version of [0, 1, 2] as const) {
    for (const name of names.slice(0, 40)) {
      assert.deepEqual(dirhash(name, version, false, zero), dirhash(name, version, false, null));
    }
  }
});

test('results are unsigned 32-bit with the low hash bit clear; legacy minor is 0', () => {
  for (const c of cases) {
    const r = dirhash(c.name, c.version, c.unsigned, c.seed);
    assert.ok(Number.isInteger(r.hash) && r.hash >= 0 && r.hash <= 0xffffffff);
    assert.ok(Number.isInteger(r.minor) && r.minor >= 0 && r.minor <= 0xffffffff);
    assert.equal(r.hash & 1, 0);
    if (c.version === 0) assert.equal(r.minor, 0);
  }
});

test('calls do not leak state into each other', () => {
  const a = Buffer.from('first-name-long-enough-for-two-md4-blocks-xxxxxxxxxxxxxxxxxxxxxx');
  const b = Buffer.from('b');
  for (const version of [0, 1, 2] as const) {
    const before = dirhash(b, version, false, null);
    dirhash(a, version, true, randomSeed);
    assert.deepEqual(dirhash(b, version, false, null), before);
  }
});

test('unknown versions are rejected', () => {
  assert.throws(() => dirhash(Buffer.from('x'), 3 as unknown as DirhashVersion, false, null), RangeError);
});
