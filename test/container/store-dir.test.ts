// A relative storeDir in a container config names a directory beside the
// config, wherever diskwright runs from (as it does for disks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diskwright, writeJsonIn } from '../cli/run.ts';
import { requireTools, run } from '../oracle/tools.ts';

test('a relative storeDir resolves against the config directory, not the cwd', () => {
  requireTools('tar');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-store-dir-'));
  try {
    const name = `${'a'.repeat(32)}-hello`;
    const p = path.join(work, 'cfg', 'store', name);
    fs.mkdirSync(p, { recursive: true });
    fs.writeFileSync(path.join(p, 'greeting'), 'hello\n');
    const cfg = writeJsonIn(path.join(work, 'cfg'), 'c.json', { name: 'rel', tag: 't', storePaths: [`/nix/store/${name}`], storeDir: 'store' });
    const out = path.join(work, 'out.tar');
    const r = diskwright(['container', cfg, '-o', out, '--no-cache'], { cwd: os.tmpdir() });
    assert.equal(r.status, 0, r.stderr);
    // The store layer holds the file read from cfg/store.
    const manifest = JSON.parse(run('tar', ['-xOf', out, 'manifest.json']).stdout.toString());
    const layer = manifest[0].Layers[0];
    const greeting = run('bash', ['-c', `tar -xOf '${out}' '${layer}' | tar -xOf - nix/store/${name}/greeting`]).stdout.toString();
    assert.equal(greeting, 'hello\n');
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
