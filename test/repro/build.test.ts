// Whole-disk determinism: the same config built under different TZ, umask,
// locale and working directory (config named relatively and absolutely)
// gives byte-identical images and layout.json.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { diskwright } from '../cli/run.ts';
import { CONTENTS, EPOCH, makeBuildSources } from '../build/fixture.ts';

let work: string;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-repro-build-'));
  makeBuildSources(work);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

for (const type of ['legacy', 'legacy+boot', 'legacy+gpt', 'efi', 'efixbootldr', 'hybrid', 'none']) {
  test(`${type}: two builds under different TZ, umask, locale and cwd are byte-identical`, () => {
    const config = {
      partitionTableType: type,
      root: 'rootfs',
      contents: CONTENTS,
      additionalSpace: '4M',
      bootSize: type === 'efixbootldr' ? '128M' : '40M',
      ...(['legacy', 'legacy+gpt', 'none'].includes(type) ? {} : { espContents: [{ source: 'esp/', target: '/' }] }),
      ...(type === 'efixbootldr' ? { xbootldrContents: [{ source: 'xbootldr/', target: '/' }] } : {}),
    };
    const name = `${type}.json`;
    fs.writeFileSync(path.join(work, name), JSON.stringify(config));
    const a = path.join(work, `a-${type}`);
    const b = path.join(work, `b-${type}`);
    const r1 = diskwright(['build', name, '-o', a], { cwd: work, umask: '022', env: { ...process.env, TZ: 'UTC', LC_ALL: 'C', SOURCE_DATE_EPOCH: String(EPOCH) } });
    assert.equal(r1.status, 0, r1.stderr);
    const r2 = diskwright(['build', path.join(work, name), '-o', b], { cwd: '/', umask: '077', env: { ...process.env, TZ: 'Pacific/Chatham', LC_ALL: 'tr_TR.UTF-8', SOURCE_DATE_EPOCH: String(EPOCH) } });
    assert.equal(r2.status, 0, r2.stderr);
    assert.equal(sha(path.join(a, 'nixos.img')), sha(path.join(b, 'nixos.img')));
    assert.equal(fs.readFileSync(path.join(a, 'layout.json'), 'utf8'), fs.readFileSync(path.join(b, 'layout.json'), 'utf8'));
    // A different seed with deterministic = false changes every id, and only that.
    const c = path.join(work, `c-${type}`);
    fs.writeFileSync(path.join(work, `nd-${name}`), JSON.stringify({ ...config, deterministic: false, seed: 'other' }));
    const r3 = diskwright(['build', `nd-${name}`, '-o', c], { cwd: work, env: { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) } });
    assert.equal(r3.status, 0, r3.stderr);
    assert.notEqual(sha(path.join(a, 'nixos.img')), sha(path.join(c, 'nixos.img')));
    const la = JSON.parse(fs.readFileSync(path.join(a, 'layout.json'), 'utf8'));
    const lc = JSON.parse(fs.readFileSync(path.join(c, 'layout.json'), 'utf8'));
    assert.equal(la.size, lc.size);
    if (la.diskGuid) assert.notEqual(la.diskGuid, lc.diskGuid);
    for (const f of [a, b, c]) fs.rmSync(f, { recursive: true });
  });
}

test('build -o - streams the same image bytes through a pipe, and the layout to stderr', () => {
  fs.writeFileSync(path.join(work, 'stream.json'), JSON.stringify({ partitionTableType: 'hybrid', root: 'rootfs', contents: CONTENTS, additionalSpace: '2M', bootSize: '40M', espContents: [{ source: 'esp/', target: '/' }] }));
  const out = path.join(work, 'stream-out');
  const file = diskwright(['build', 'stream.json', '-o', out], { cwd: work });
  assert.equal(file.status, 0, file.stderr);
  const piped = diskwright(['build', 'stream.json', '-o', '-'], { cwd: work });
  assert.equal(piped.status, 0, piped.stderr);
  assert.match(piped.stderr, /hybrid layout/);
  assert.equal(createHash('sha256').update(piped.stdout).digest('hex'), sha(path.join(out, 'nixos.img')));
});
