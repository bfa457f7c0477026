// NAR bytes, narHash and narSize of trees made here (not in a store), against
// nix-store --dump and nix-hash; the CLI's `nar hash` and `nar dump`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { narDigest, narNodeOfEntry, narNodeOfPath, writeNar } from '../../src/nix/nar.ts';
import { formatSha256 } from '../../src/nix/hash.ts';
import { scanPath } from '../../src/tree/scan.ts';
import { diskwright } from '../cli/run.ts';
import { requireNix } from './nixstore.ts';

let work: string;
let tree: string;

function nix(tool: string, args: string[]): Buffer {
  const r = spawnSync(tool, args, { maxBuffer: 1 << 30, env: { ...process.env, LC_ALL: 'C' } });
  assert.equal(r.status, 0, `${tool} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function ourNar(p: string): Buffer {
  const parts: Buffer[] = [];
  writeNar(narNodeOfPath(p), (c) => parts.push(Buffer.from(c)));
  return Buffer.concat(parts);
}

before(() => {
  requireNix();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-nar-'));
  tree = path.join(work, 'tree');
  const w = (rel: string, data: string | Buffer, mode = 0o644) => {
    const p = path.join(tree, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data, { mode });
    fs.chmodSync(p, mode);
  };
  w('plain', 'hello\n');
  w('exec', '#!/bin/sh\n', 0o755);
  w('exec-group-only', 'x', 0o654); // only the owner's x bit counts
  w('empty', '');
  w('eight', '12345678');
  // Several staging buffers' worth, not a multiple of 8.
  const big = Buffer.alloc(3 * 1024 * 1024 + 3);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 11)) & 0xff;
  w('big', big);
  fs.mkdirSync(path.join(tree, 'empty-dir'));
  fs.mkdirSync(path.join(tree, 'a/b/c/d'), { recursive: true });
  w('a/b/c/d/leaf', 'leaf');
  for (const n of ['B', 'a-', 'a.', 'A', '_', 'Z', 'é', 'z', '0', '.dot', 'ab', 'a']) w(`names/${n}x`, n);
  fs.writeFileSync(Buffer.from(path.join(tree, 'names') + '/\xff\xfe-not-utf8', 'latin1'), 'raw name');
  fs.symlinkSync('plain', path.join(tree, 'rel-link'));
  fs.symlinkSync('/nonexistent/dangling', path.join(tree, 'abs-link'));
  fs.symlinkSync('a/b', path.join(tree, 'dir-link'));
  fs.linkSync(path.join(tree, 'eight'), path.join(tree, 'eight-hardlink'));
  fs.chmodSync(path.join(tree, 'a/b'), 0o700);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function subjects(): string[] {
  return [tree, path.join(tree, 'plain'), path.join(tree, 'exec'), path.join(tree, 'empty'), path.join(tree, 'big'), path.join(tree, 'rel-link'), path.join(tree, 'empty-dir'), path.join(tree, 'names')];
}

test('NAR bytes equal nix-store --dump for directories, files, executables, symlinks and odd names', () => {
  for (const p of subjects()) {
    const ours = ourNar(p);
    const theirs = nix('nix-store', ['--dump', p]);
    assert.equal(ours.length, theirs.length, `${p}: size`);
    assert.ok(ours.equals(theirs), `${p}: bytes differ`);
  }
});

test('narHash and narSize equal nix-hash and the length of nix-store --dump', () => {
  for (const p of subjects()) {
    const d = narDigest(narNodeOfPath(p));
    const nix32 = nix('nix-hash', ['--type', 'sha256', '--base32', p]).toString().trim();
    assert.equal(formatSha256(d.narHash), `sha256:${nix32}`, p);
    const dump = nix('nix-store', ['--dump', p]);
    assert.equal(d.narSize, dump.length, p);
    assert.deepEqual(d.narHash, createHash('sha256').update(dump).digest());
  }
});

test('a FileTree entry serialises to the same NAR as the directory it was scanned from', () => {
  const entry = scanPath(tree);
  const parts: Buffer[] = [];
  writeNar(narNodeOfEntry(entry), (c) => parts.push(Buffer.from(c)));
  assert.ok(Buffer.concat(parts).equals(ourNar(tree)));
});

test('diskwright nar hash prints what nix-hash prints, one line per path', () => {
  const paths = [tree, path.join(tree, 'big')];
  const r = diskwright(['nar', 'hash', ...paths]);
  assert.equal(r.status, 0, r.stderr);
  const expected = paths.map((p) => `sha256:${nix('nix-hash', ['--type', 'sha256', '--base32', p]).toString().trim()}`);
  assert.equal(r.stdout.toString(), expected.join('\n') + '\n');
});

test('diskwright nar dump writes the NAR to standard output and to a file', () => {
  const theirs = nix('nix-store', ['--dump', tree]);
  const r = diskwright(['nar', 'dump', tree]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.equals(theirs), 'stdout');
  const out = path.join(work, 'tree.nar');
  const f = diskwright(['nar', 'dump', tree, '-o', out]);
  assert.equal(f.status, 0, f.stderr);
  assert.ok(fs.readFileSync(out).equals(theirs), 'file');
  assert.deepEqual(fs.readdirSync(work).filter((n) => n.includes('diskwright')), [], 'no temporary file left');
  // Restoring it with Nix gives the tree back.
  const back = path.join(work, 'restored');
  const rs = spawnSync('nix-store', ['--restore', back], { input: theirs });
  assert.equal(rs.status, 0, String(rs.stderr));
  assert.ok(ourNar(back).equals(theirs));
});
