// Determinism of the disk-spec layouts (custom GPT, custom MBR with a raw
// blob, sd-image): the same config built under another clock (faketime),
// time zone, umask and working directory, the config named relatively and
// absolutely, gives the same image and layout.json byte for byte.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { BIN, diskwright } from '../cli/run.ts';
import { requireTools } from '../oracle/tools.ts';
import { pseudoRandom } from '../oracle/fixture.ts';
import { makeBuildSources } from '../build/fixture.ts';

let work: string;
before(() => {
  requireTools('faketime');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-repro-disk-'));
  makeBuildSources(work);
  fs.writeFileSync(path.join(work, 'spl.bin'), pseudoRandom('spl', 30_000));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

const CONFIGS: Record<string, object> = {
  gpt: {
    partitions: [
      { label: 'esp', type: 'esp', fs: 'vfat', contents: [{ source: 'esp/', target: '/' }] },
      { label: 'root', type: 'root', fs: 'ext4', root: 'rootfs', freeSpace: '1M' },
      { label: 'home', type: 'home', fs: 'ext4', contents: [{ source: 'extra/srv', target: '/alice', user: 1000, group: 100 }] },
      { label: 'swap', type: 'swap', size: '2M' },
      { label: 'data', fs: 'ext4', grow: true, minSize: '4M' },
    ],
  },
  mbr: {
    partitionTableType: 'mbr',
    partitions: [{ type: '0x0c', fs: 'vfat', size: '4M', contents: [{ source: 'esp/', target: '/' }] }, { type: 'linux', fs: 'ext4', root: 'rootfs', bootable: true, grow: true }],
    rawBlobs: [{ source: 'spl.bin', offset: 8192, maxSize: '1000K' }],
  },
  'sd-image': {
    builder: 'sd-image',
    firmwareContents: [{ source: 'esp/', target: '/' }],
    rootContents: [{ source: 'rootfs/', target: '/' }, { source: 'extra/motd', target: '/etc/motd', mode: '0600' }],
    postBuildBlobs: [{ source: 'spl.bin', offset: 8192 }],
    additionalSpace: '2M',
  },
};

for (const [name, config] of Object.entries(CONFIGS)) {
  test(`${name}: two builds under different clocks, TZ, umask and cwd are byte-identical`, () => {
    fs.writeFileSync(path.join(work, `${name}.json`), JSON.stringify(config));
    const a = path.join(work, `a-${name}`);
    const b = path.join(work, `b-${name}`);
    const r1 = diskwright(['build', `${name}.json`, '-o', a], { cwd: work, umask: '022', env: { ...process.env, TZ: 'UTC' } });
    assert.equal(r1.status, 0, r1.stderr);
    const r2 = spawnSync('/bin/sh', ['-c', 'umask 077; exec "$@"', 'sh', 'faketime', '2031-05-05 10:00:00', process.execPath, BIN, 'build', path.join(work, `${name}.json`), '-o', b], {
      cwd: '/', env: { ...process.env, TZ: 'Pacific/Chatham' }, encoding: 'utf8',
    });
    assert.equal(r2.status, 0, r2.stderr);
    const layout = JSON.parse(fs.readFileSync(path.join(a, 'layout.json'), 'utf8'));
    assert.equal(sha(path.join(a, layout.image)), sha(path.join(b, layout.image)));
    assert.equal(fs.readFileSync(path.join(a, 'layout.json'), 'utf8'), fs.readFileSync(path.join(b, 'layout.json'), 'utf8'));
    fs.rmSync(a, { recursive: true });
    fs.rmSync(b, { recursive: true });
  });
}
