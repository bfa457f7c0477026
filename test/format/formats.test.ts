// Every output format end to end through the CLI: qemu-img checks the file,
// says it holds the same disk as the raw build, and reports the virtual size;
// a stream through a pipe is byte-identical to the file (qcow2-compressed,
// which needs a seekable file, refuses the stream and is rebuilt to a file).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { BIN, diskwright } from '../cli/run.ts';
import { requireTools, run } from '../oracle/tools.ts';
import { makeBuildSources } from '../build/fixture.ts';
import { FORMATS, extension } from '../../src/format/output.ts';

let work: string;
let rawImage: string;
const QEMU_FORMAT: Record<string, string> = { raw: 'raw', qcow2: 'qcow2', 'qcow2-compressed': 'qcow2', vdi: 'vdi', vpc: 'vpc', 'vhd-fixed': 'vpc' };

before(() => {
  requireTools('qemu-img', 'faketime');
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
  const streams = format !== 'qcow2-compressed';
  test(`${format}: qemu-img check, compare and info agree; ${streams ? 'a stream equals the file' : 'a stream is refused'}; rebuilds are identical`, () => {
    const out = path.join(work, `out-${format}`);
    const r = diskwright(['build', 'disk.json', '-o', out, '--format', format], { cwd: work });
    assert.equal(r.status, 0, r.stderr);
    const file = path.join(out, `nixos.${extension({ format })}`);
    // make-disk-image names qcow2-compressed's product qcow2-image, like qcow2's.
    const product = format === 'qcow2-compressed' ? 'qcow2' : format;
    assert.equal(fs.readFileSync(path.join(out, 'nix-support/hydra-build-products'), 'utf8'), `file ${product}-image ${file}\n`);
    const qf = QEMU_FORMAT[format];
    // qemu-img has no checker for vpc ("does not support checks"); compare below reads every block.
    const check = run('qemu-img', ['check', '-f', qf, file], { allowFailure: true });
    if (qf === 'vpc') assert.match(check.stderr + check.stdout.toString(), /does not support checks/);
    else assert.equal(check.status, 0, check.stdout.toString() + check.stderr);
    run('qemu-img', ['compare', '-f', 'raw', '-F', qf, rawImage, file]);
    const info = JSON.parse(run('qemu-img', ['info', '--output=json', '-f', qf, file]).stdout.toString());
    assert.equal(info['virtual-size'], fs.statSync(rawImage).size);
    const seekable = !streams;
    const piped = diskwright(['build', 'disk.json', '-o', '-', '--format', format], { cwd: work });
    if (seekable) {
      assert.equal(piped.status, 1);
      assert.equal(piped.stdout.length, 0);
      assert.match(piped.stderr, /^diskwright: qcow2-compressed cannot be streamed[^\n]*\n$/);
    } else {
      assert.equal(piped.status, 0, piped.stderr);
      assert.equal(sha(piped.stdout), sha(fs.readFileSync(file)));
    }
    // Another clock (faketime, years ahead), time zone and working directory: the same bytes.
    const againDir = path.join(work, `again-${format}`);
    const again = spawnSync('faketime', ['2031-05-05 10:00:00', process.execPath, BIN, 'build', path.join(work, 'disk.json'), '-o', seekable ? againDir : '-', '--format', format], {
      cwd: '/', env: { ...process.env, TZ: 'Asia/Kathmandu' }, maxBuffer: 1 << 30,
    });
    assert.equal(again.status, 0, String(again.stderr));
    const againBytes = seekable ? fs.readFileSync(path.join(againDir, path.basename(file))) : again.stdout;
    assert.equal(sha(againBytes), sha(fs.readFileSync(file)));
  });
}
