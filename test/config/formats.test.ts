// One config written as JSON, YAML, TOML and a typed .ts module builds the
// same image; defaults mirror make-disk-image.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { diskwright, ROOT } from '../cli/run.ts';
import { makeBuildSources } from '../build/fixture.ts';
import { validateConfig } from '../../src/config/load.ts';

let work: string;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-formats-'));
  makeBuildSources(work);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

test('defaults are make-disk-image\'s', () => {
  const c = validateConfig({}, 'x.json');
  assert.equal(c.partitionTableType, 'legacy');
  assert.equal(c.diskSize, 'auto');
  assert.equal(c.additionalSpace, '512M');
  assert.equal(c.bootSize, '256M');
  assert.equal(c.label, 'nixos');
  assert.equal(c.baseName, 'nixos');
  assert.equal(c.name, 'nixos-disk-image');
  assert.equal(c.format, 'raw');
  assert.equal(c.deterministic, true);
  assert.equal(c.rootGPUID, 'F222513B-DED1-49FA-B591-20CE86A2FE7F');
});

test('JSON, YAML, TOML and TypeScript configs build identical images', () => {
  const files: Record<string, string> = {
    'c.json': JSON.stringify({ partitionTableType: 'efi', bootSize: '40M', additionalSpace: '2M', root: 'rootfs', baseName: 'img', contents: [{ source: 'extra/motd', target: '/etc/motd', mode: '0640', user: 'alice', group: 'users' }], espContents: [{ source: 'esp/', target: '/' }] }),
    'c.yaml': [
      'partitionTableType: efi', 'bootSize: 40M', 'additionalSpace: 2M', 'root: rootfs', 'baseName: img',
      'contents:', '  - source: extra/motd', '    target: /etc/motd', '    mode: "0640"', '    user: alice', '    group: users',
      'espContents:', '  - { source: esp/, target: / }', '',
    ].join('\n'),
    'c.toml': [
      'partitionTableType = "efi"', 'bootSize = "40M"', 'additionalSpace = "2M"', 'root = "rootfs"', 'baseName = "img"',
      '[[contents]]', 'source = "extra/motd"', 'target = "/etc/motd"', 'mode = "0640"', 'user = "alice"', 'group = "users"',
      '[[espContents]]', 'source = "esp/"', 'target = "/"', '',
    ].join('\n'),
    'c.ts': [
      `import { defineImage } from ${JSON.stringify(path.join(ROOT, 'src/api/index.ts'))};`,
      'export default defineImage({',
      "  partitionTableType: 'efi', bootSize: '40M', additionalSpace: '2M', root: 'rootfs', baseName: 'img',",
      "  contents: [{ source: 'extra/motd', target: '/etc/motd', mode: '0640', user: 'alice', group: 'users' }],",
      "  espContents: [{ source: 'esp/', target: '/' }],",
      '});', '',
    ].join('\n'),
  };
  const hashes: string[] = [];
  for (const [name, text] of Object.entries(files)) {
    fs.writeFileSync(path.join(work, name), text);
    const out = path.join(work, `out-${name}`);
    const r = diskwright(['build', path.join(work, name), '-o', out]);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    hashes.push(sha(path.join(out, 'img.img')));
    fs.rmSync(out, { recursive: true });
  }
  assert.equal(new Set(hashes).size, 1, hashes.join(' '));
});

test('the bundled examples (YAML and typed .ts) build the same disk, and sgdisk finds no problems', () => {
  const outs = ['disk.yaml', 'disk.ts'].map((name) => {
    const out = path.join(work, `example-${name}`);
    const r = diskwright(['build', path.join(ROOT, 'examples', name), '-o', out]);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    return path.join(out, 'nixos.img');
  });
  assert.equal(sha(outs[0]), sha(outs[1]));
  const v = spawnSync('sgdisk', ['-v', outs[0]], { encoding: 'utf8' });
  assert.match(v.stdout, /No problems found/);
});
