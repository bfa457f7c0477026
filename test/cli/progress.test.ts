// The progress line: shown on a terminal (a pseudo-terminal made by
// util-linux's script), never when stderr is a file, never with --quiet, and
// never a change to the image's bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, diskwright } from './run.ts';

let work: string;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-progress-'));
  fs.mkdirSync(path.join(work, 'root/data'), { recursive: true });
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < 24; i++) fs.writeFileSync(path.join(work, `root/data/f${i}`), block.fill(i + 1));
  fs.writeFileSync(path.join(work, 'c.json'), JSON.stringify({ partitionTableType: 'efi', bootSize: '16M', additionalSpace: '1M', root: 'root' }));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** `diskwright ARGS` on a pseudo-terminal: everything it wrote to the terminal. */
function onTerminal(args: string[]): string {
  const cmd = [process.execPath, BIN, ...args].map(quote).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '120' } });
  assert.equal(r.status, 0, `${cmd}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The progress line's redraws: a carriage return, the text, erase to the end of the line. */
const redraws = (out: string) => [...out.matchAll(/\r([a-z]+) [^\r\n]*?\x1b\[K/g)].map((m) => m[1]);

test('on a terminal a build redraws one progress line; with stderr to a file there is none; the image is the same', () => {
  const tty = onTerminal(['build', path.join(work, 'c.json'), '-o', path.join(work, 'tty')]);
  const phases = redraws(tty);
  assert.ok(phases.includes('scanning') && phases.includes('writing'), JSON.stringify(tty.slice(0, 400)));
  assert.match(tty, /writing +\d[\d.]* [KMG]?i?B of 2[0-9]\.\d MiB \(\d+%\)/);
  // Redrawn in place: no line feed inside the progress, and erased before the layout is printed.
  assert.match(tty, /\r\x1b\[Knixos\.img: /);
  assert.doesNotMatch(tty.slice(0, tty.indexOf('nixos.img: ')), /\n/);

  const file = diskwright(['build', path.join(work, 'c.json'), '-o', path.join(work, 'file')]);
  assert.equal(file.status, 0, file.stderr);
  assert.doesNotMatch(file.stderr, /\r|\x1b|writing /);
  assert.match(file.stderr, /^nixos\.img: /);
  assert.ok(fs.readFileSync(path.join(work, 'tty/nixos.img')).equals(fs.readFileSync(path.join(work, 'file/nixos.img'))));
  assert.equal(fs.readFileSync(path.join(work, 'tty/layout.json'), 'utf8'), fs.readFileSync(path.join(work, 'file/layout.json'), 'utf8'));
});

test('--quiet (-q) and --json turn the line off on a terminal', () => {
  const tty = onTerminal(['build', path.join(work, 'c.json'), '-o', path.join(work, 'quiet'), '--quiet']);
  assert.deepEqual(redraws(tty), []);
  assert.doesNotMatch(tty, /\x1b\[K/);
  assert.match(tty, /nixos\.img: /);
  const short = onTerminal(['mkfs', 'vfat', path.join(work, 'root'), '-o', path.join(work, 'quiet.vfat'), '-q']);
  assert.doesNotMatch(short, /\x1b\[K/);
  const json = onTerminal(['build', path.join(work, 'c.json'), '-o', path.join(work, 'json'), '--json']);
  assert.doesNotMatch(json, /\x1b\[K/);
  assert.ok(JSON.parse(json.slice(json.indexOf('{'))), 'one JSON document');
});

test('compressing and converting are phases of their own, and compressed bytes do not change', () => {
  const tty = onTerminal(['mkfs', 'ext4', path.join(work, 'root'), '-o', path.join(work, 'fs.img.zst'), '--compress', 'zstd']);
  assert.ok(redraws(tty).includes('compressing'), JSON.stringify(tty.slice(0, 300)));
  assert.equal(diskwright(['mkfs', 'ext4', path.join(work, 'root'), '-o', path.join(work, 'plain.img.zst'), '--compress', 'zstd']).status, 0);
  assert.ok(fs.readFileSync(path.join(work, 'fs.img.zst')).equals(fs.readFileSync(path.join(work, 'plain.img.zst'))));
  const conv = onTerminal(['convert', path.join(work, 'plain.img.zst'), path.join(work, 'fs.qcow2')]);
  assert.ok(redraws(conv).includes('converting'), JSON.stringify(conv.slice(0, 300)));
});
