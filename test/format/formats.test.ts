// Every output format end to end through the CLI: qemu-img checks the file,
// says it holds the same disk as the raw build, and reports the virtual size;
// a stream through a pipe is byte-identical to the file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { diskwright } from '../cli/run.ts';
import { requireTools, run } from '../oracle/tools.ts';
import { makeBuildSources } from '../build/fixture.ts';
import { FORMATS, extension } from '../../src/format/output.ts';

let work: string;
let rawImage: string;
const QEMU_FORMAT: Record<string, string> = { raw: 'raw', qcow2: 'qcow2', vdi: 'vdi', vpc: 'vpc', 'vhd-fixed': 'vpc' };

before(() => {
  requireTools('qemu-img');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-formats-'));
  makeBuildSources(work);
  fs.writeFileSync(path.join(work, 'disk.json'), JSON.stringify({ partitionTableType: 'efi', bootSize: '40M', additionalSpace: '32M', root: 'rootfs', espContents: [{ source: 'esp/', target: '/' }] }));
  const r = diskwright(['build', 'disk.json', '-o', 'raw'], { cwd: work });
  assert.equal(r.status, 0, r.stderr);
  rawImage = path.join(work, 'raw/nixos.img');
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const format of FORMATS.filter((f) => f !== 'raw')) {
  test(`${format}: qemu-img check, compare and info agree; a stream equals the file`, () => {
    const out = path.join(work, `out-${format}`);
    const r = diskwright(['build', 'disk.json', '-o', out, '--format', format], { cwd: work });
    assert.equal(r.status, 0, r.stderr);
    const file = path.join(out, `nixos.${extension({ format })}`);
    assert.equal(fs.readFileSync(path.join(out, 'nix-support/hydra-build-products'), 'utf8'), `file ${format}-image ${file}\n`);
    const qf = QEMU_FORMAT[format];
    run('qemu-img', ['check', '-f', qf, file]);
    run('qemu-img', ['compare', '-f', 'raw', '-F', qf, rawImage, file]);
    const info = JSON.parse(run('qemu-img', ['info', '--output=json', '-f', qf, file]).stdout.toString());
    assert.equal(info['virtual-size'], fs.statSync(rawImage).size);
    const piped = diskwright(['build', 'disk.json', '-o', '-', '--format', format], { cwd: work });
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(sha(piped.stdout), sha(fs.readFileSync(file)));
  });
}
