// Bad build configs: one line naming the input and what to do, exit 1, and
// no image left under the output name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diskwright } from './run.ts';
import { CONTENTS, makeBuildSources } from '../build/fixture.ts';

let work: string;
let n = 0;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-build-errors-'));
  makeBuildSources(work);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function build(config: unknown, name = `c${n++}.json`) {
  const file = path.join(work, name);
  fs.writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  const out = path.join(work, `out-${name}`);
  const r = diskwright(['build', file, '-o', out]);
  return { ...r, file, out };
}

function fails(config: unknown, pattern: RegExp, name?: string) {
  const r = build(config, name);
  assert.equal(r.status, 1, `exit status; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0], pattern);
  // Nothing at all under the output directory: no image, no temp file, no layout.json.
  if (fs.existsSync(r.out)) assert.deepEqual(fs.readdirSync(r.out), []);
  return lines[0];
}

const base = { root: 'rootfs', additionalSpace: '1M' };

test('an unknown key names the key and the file', () => {
  const line = fails({ ...base, partitionTabelType: 'efi' }, /unknown key "partitionTabelType"/);
  assert.match(line, /c\d+\.json/);
});

test('an unknown key inside a contents entry names where it is', () => {
  fails({ ...base, contents: [{ source: 'extra/motd', target: '/etc/motd', owner: 'alice' }] }, /unknown key "owner" in contents\[0\]/);
});

test('a wrong type names the key', () => {
  fails({ ...base, diskSize: 'big' }, /key diskSize:/);
  fails({ ...base, partitionTableType: 'gpt' }, /key partitionTableType:/);
  fails({ ...base, contents: [{ source: 'extra/motd', target: 5 }] }, /key contents\[0\]\.target:/);
  fails({ ...base, additionalSpace: '12 parsecs' }, /key additionalSpace:/);
});

test('malformed JSON, YAML and TOML name the file', () => {
  fails('{"root": ', /not valid JSON/, 'bad.json');
  fails('root: [unclosed', /not valid YAML/, 'bad.yaml');
  fails('root = ', /not valid TOML/, 'bad.toml');
});

test('a missing config file', () => {
  const r = diskwright(['build', path.join(work, 'nope.json'), '-o', path.join(work, 'out-nope')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /nope\.json: no such file/);
});

test('user without group, and group without user', () => {
  fails({ ...base, contents: [{ source: 'extra/motd', target: '/etc/motd', user: 'alice' }] }, /contents\[0\]: set both user and group/);
  fails({ ...base, contents: [{ source: 'extra/motd', target: '/etc/motd', group: 'users' }] }, /contents\[0\]: set both user and group/);
});

test('a duplicate target', () => {
  fails({ ...base, contents: [CONTENTS[0], { source: 'extra/glob/one.txt', target: '/etc/motd' }] }, /contents\[1\]: duplicate entry \/etc\/motd/);
});

test('relative and escaping targets', () => {
  fails({ ...base, contents: [{ source: 'extra/motd', target: 'etc/motd' }] }, /contents\[0\]: target "etc\/motd" is not an absolute path/);
  fails({ ...base, contents: [{ source: 'extra/motd', target: '/etc/../../motd' }] }, /contents\[0\]: target "\/etc\/..\/..\/motd" contains/);
});

test('a missing source, and a glob that matches nothing', () => {
  fails({ ...base, contents: [{ source: 'extra/nope', target: '/x' }] }, /contents\[0\]: source extra\/nope does not exist/);
  fails({ ...base, contents: [{ source: 'extra/*.nope', target: '/x' }] }, /contents\[0\]: source extra\/\*\.nope matches nothing/);
  fails({ ...base, root: 'no-such-root' }, /no-such-root does not exist/);
});

test('a user or group the image does not know', () => {
  fails({ ...base, contents: [{ source: 'extra/motd', target: '/etc/motd', user: 'mallory', group: 'users' }] }, /contents\[0\]: user "mallory" is not in the image's \/etc\/passwd/);
  fails({ ...base, contents: [{ source: 'extra/motd', target: '/etc/motd', user: 'alice', group: 'staff' }] }, /contents\[0\]: group "staff" is not in the image's \/etc\/group/);
});

test('a bad mode', () => {
  fails({ ...base, contents: [{ source: 'extra/motd', target: '/etc/motd', mode: 'rw-r--r--' }] }, /contents\[0\]: mode "rw-r--r--" is not an octal mode/);
});

test('espContents for a layout without an ESP', () => {
  fails({ ...base, espContents: [{ source: 'esp/', target: '/' }] }, /espContents: the legacy layout has no ESP/);
});

test('a diskSize too small says the minimum, and the minimum works', () => {
  const line = fails({ ...base, partitionTableType: 'efi', bootSize: '40M', diskSize: 41 }, /diskSize 41 \(MiB\) is too small .* at least (\d+)/);
  const min = Number(/at least (\d+)/.exec(line)![1]);
  const ok = build({ ...base, partitionTableType: 'efi', bootSize: '40M', diskSize: min });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(fs.statSync(path.join(ok.out, 'nixos.img')).size, min * 2 ** 20);
  const below = build({ ...base, partitionTableType: 'efi', bootSize: '40M', diskSize: min - 1 });
  assert.equal(below.status, 1);
});

test('boot files too big for bootSize say the bootSize that works', () => {
  fs.mkdirSync(path.join(work, 'bigesp'), { recursive: true });
  fs.writeFileSync(path.join(work, 'bigesp/big.bin'), Buffer.alloc(40 * 2 ** 20, 1));
  const line = fails({ ...base, partitionTableType: 'efi', bootSize: '40M', espContents: [{ source: 'bigesp/', target: '/' }] }, /espContents: .*too small.*raise bootSize to at least (\d+)M/);
  const min = Number(/at least (\d+)M/.exec(line)![1]);
  const ok = build({ ...base, partitionTableType: 'efi', bootSize: `${min}M`, espContents: [{ source: 'bigesp/', target: '/' }] });
  assert.equal(ok.status, 0, ok.stderr);
});

test('a bootSize that is not above the ESP start', () => {
  fails({ ...base, partitionTableType: 'efi', bootSize: '8M' }, /bootSize 8 MiB: the efi layout needs/);
});
