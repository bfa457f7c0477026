// Bad build configs: one line naming the input and what to do, exit 1, and
// no image left under the output name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { diskwright } from './run.ts';
import { CONTENTS, makeBuildSources } from '../build/fixture.ts';

let work: string;
let n = 0;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-build-errors-'));
  makeBuildSources(work);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function build(config: unknown, name = `c${n++}.json`, env?: NodeJS.ProcessEnv) {
  const file = path.join(work, name);
  fs.writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  const out = path.join(work, `out-${name}`);
  const r = diskwright(['build', file, '-o', out], env ? { env: { ...process.env, ...env } } : {});
  return { ...r, file, out };
}

function fails(config: unknown, pattern: RegExp, name?: string, env?: NodeJS.ProcessEnv) {
  const r = build(config, name, env);
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
  const line = fails({ ...base, partitionTableType: 'efi', bootSize: '40M', espContents: [{ source: 'bigesp/', target: '/' }] }, /bootSize: .*too small.*raise bootSize to at least (\d+)M/);
  const min = Number(/at least (\d+)M/.exec(line)![1]);
  const ok = build({ ...base, partitionTableType: 'efi', bootSize: `${min}M`, espContents: [{ source: 'bigesp/', target: '/' }] });
  assert.equal(ok.status, 0, ok.stderr);
});

test('a bootSize that is not above the ESP start', () => {
  fails({ ...base, partitionTableType: 'efi', bootSize: '8M' }, /bootSize 8 MiB: the efi layout needs/);
});

/** A refusal that names the config file and the key. */
function refused(config: unknown, key: RegExp, pattern: RegExp) {
  const name = `k${n++}.json`;
  const line = fails(config, pattern, name);
  assert.ok(line.includes(name), `names the config file: ${line}`);
  assert.match(line, key);
}

test('a NUL byte in a target name', () => {
  refused({ ...base, contents: [{ source: 'extra/motd', target: '/etc/mo\u0000td' }] }, /contents\[0\]\.target/, /holds a NUL byte/);
});

test('a target name over 255 bytes (ext4) or 255 UTF-16 units (FAT)', () => {
  refused({ ...base, contents: [{ source: 'extra/motd', target: `/etc/${'é'.repeat(128)}` }] }, /contents\[0\]\.target/, /is 256 bytes; ext4 names hold at most 255/);
  refused({ ...base, partitionTableType: 'efi', espContents: [{ source: 'esp/', target: '/ok' }, { source: 'esp/', target: `/${'a'.repeat(256)}` }] }, /espContents\[1\]\.target/, /is 256 UTF-16 units; FAT names hold at most 255/);
  // 128 two-byte characters: too long for ext4, fine for FAT.
  const ok = build({ ...base, partitionTableType: 'efi', espContents: [{ source: 'esp/', target: `/${'é'.repeat(128)}` }] });
  assert.equal(ok.status, 0, ok.stderr);
});

test('a uid or gid above 2^32 - 1, as a number, a numeric string or through the image\'s /etc/passwd', () => {
  const c = (user: unknown, group: unknown) => ({ ...base, contents: [{ source: 'extra/motd', target: '/etc/motd', user, group }] });
  refused(c('99999999999', 'users'), /key contents\[0\]\.user/, /from 0 to 4294967295/);
  refused(c(99999999999, 0), /key contents\[0\]\.user/, /from 0 to 4294967295/);
  refused(c('alice', 4294967296), /key contents\[0\]\.group/, /from 0 to 4294967295/);
  fs.mkdirSync(path.join(work, 'bigids/etc'), { recursive: true });
  fs.writeFileSync(path.join(work, 'bigids/etc/passwd'), 'root:x:0:0::/root:/bin/sh\nhuge:x:99999999999:0::/:/bin/sh\n');
  fs.writeFileSync(path.join(work, 'bigids/etc/group'), 'root:x:0:\n');
  refused({ ...c('huge', 'root'), root: 'bigids' }, /contents\[0\]\.user "huge"/, /\/etc\/passwd gives it id 99999999999, above 4294967295/);
  // The largest id is stored as it is.
  const ok = build({ ...c(4294967295, '4294967295'), partitionTableType: 'none' });
  assert.equal(ok.status, 0, ok.stderr);
  const stat = spawnSync('debugfs', ['-R', 'stat /etc/motd', path.join(ok.out, 'nixos.img')], { encoding: 'utf8' });
  // debugfs prints ids as signed 32-bit numbers.
  assert.match(stat.stdout, /User:\s+-1\s+Group:\s+-1\s/);
});

test('a target that passes through a symlink or a file already in the image names it', () => {
  // rootfs has bin -> usr/bin.
  refused({ ...base, contents: [{ source: 'extra/motd', target: '/bin/motd' }] }, /contents\[0\]\.target "\/bin\/motd"/, /\/bin is a symlink to usr\/bin .* write the real path, \/usr\/bin\/motd/);
  refused({ ...base, contents: [{ source: 'extra/glob/*.txt', target: '/bin' }] }, /contents\[0\]\.target "\/bin"/, /\/bin is a symlink to usr\/bin/);
  refused({ ...base, contents: [{ source: 'extra/motd', target: '/etc/hostname/motd' }] }, /contents\[0\]\.target/, /\/etc\/hostname is a file already in the image/);
});

test('SOURCE_DATE_EPOCH that is not a whole number, and epochs past what ext4 stores', () => {
  for (const v of ['garbage', '-5', '1.5', '', '15032385536']) {
    const line = fails(base, /SOURCE_DATE_EPOCH .* is not a whole number of seconds from 0 to 15032385535/, undefined, { SOURCE_DATE_EPOCH: v });
    assert.ok(line.includes(JSON.stringify(v)), line);
  }
  refused({ ...base, epoch: 15032385536 }, /key epoch/, /from 0 to 15032385535/);
  // The last second ext4 stores is stored as it is.
  const ok = build({ ...base, epoch: 15032385535, partitionTableType: 'none' });
  assert.equal(ok.status, 0, ok.stderr);
  const stat = spawnSync('debugfs', ['-R', 'stat /lost+found', path.join(ok.out, 'nixos.img')], { encoding: 'utf8' });
  assert.match(stat.stdout, /mtime: 0x7fffffff:00000003 -- .* 2446/);
});
