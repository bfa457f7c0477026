// Reading a NixOS toplevel: bootspec boot.json first, else the toplevel's own
// files; links inside the store followed through a store kept elsewhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readBootEntries, readToplevel, resolveStoreFile } from '../../src/boot/toplevel.ts';
import { storeDirs } from '../../src/nix/store-path.ts';
import { makeToplevel, storeName } from './parts.ts';

let work: string;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-toplevel-'));
  for (const f of ['kernel', 'initrd', 'busybox', 'sdboot.efi']) fs.writeFileSync(path.join(work, f), `fake ${f}\n`);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const files = () => ({
  kernel: path.join(work, 'kernel'), initrd: path.join(work, 'initrd'), busybox: path.join(work, 'busybox'),
  systemdBootEfi: path.join(work, 'sdboot.efi'), kernelParams: 'root=LABEL=nixos console=ttyS0',
});

test('without boot.json: kernel, initrd, init, kernel-params and nixos-version, links followed through storeDir', () => {
  const store = path.join(work, 'store-plain');
  const { toplevel } = makeToplevel(store, files());
  const sys = readToplevel(toplevel, storeDirs({ storeDir: store }));
  assert.equal(sys.toplevel, toplevel);
  assert.equal(sys.entries.length, 1);
  const [e] = sys.entries;
  assert.equal(e.id, 'nixos-generation-1');
  assert.equal(e.kernel.storePath, `/nix/store/${storeName('linux-6.1')}/bzImage`);
  assert.equal(e.kernel.host, path.join(store, storeName('linux-6.1'), 'bzImage'));
  assert.equal(e.kernel.size, 'fake kernel\n'.length);
  assert.equal(e.initrd!.storePath, `/nix/store/${storeName('initrd-linux-6.1')}/initrd`);
  assert.equal(e.options, `init=${toplevel}/init root=LABEL=nixos console=ttyS0`);
  assert.deepEqual(e.nixos, { label: 'NixOS 24.11.20241204.diskwright', generation: 1 });
});

test('boot.json wins: its kernel, initrd, init, kernelParams and label', () => {
  const store = path.join(work, 'store-bootspec');
  const { toplevel } = makeToplevel(store, { ...files(), bootJson: true });
  const top = path.join(store, path.basename(toplevel));
  const spec = JSON.parse(fs.readFileSync(path.join(top, 'boot.json'), 'utf8'));
  spec['org.nixos.bootspec.v1'].kernelParams = ['quiet', 'loglevel=3'];
  spec['org.nixos.bootspec.v1'].label = 'NixOS 25.05 (Linux 6.12.1)';
  fs.writeFileSync(path.join(top, 'boot.json'), JSON.stringify(spec));
  fs.writeFileSync(path.join(top, 'kernel-params'), 'ignored');
  const [e] = readToplevel(toplevel, storeDirs({ storeDir: store })).entries;
  assert.equal(e.options, `init=${toplevel}/init quiet loglevel=3`);
  assert.equal(e.nixos!.label, 'NixOS 25.05 (Linux 6.12.1)');
});

test('resolveStoreFile: relative and absolute links, missing files, links out of the store', () => {
  const store = path.join(work, 'store-links');
  const a = storeName('a');
  const b = storeName('b');
  fs.mkdirSync(path.join(store, a, 'dir'), { recursive: true });
  fs.mkdirSync(path.join(store, b), { recursive: true });
  fs.writeFileSync(path.join(store, a, 'dir/file'), 'x');
  fs.symlinkSync('dir/file', path.join(store, a, 'rel'));
  fs.symlinkSync(`/nix/store/${a}/dir`, path.join(store, b, 'abs'));
  fs.symlinkSync('/etc/passwd', path.join(store, b, 'out'));
  const dirs = storeDirs({ storeDir: store });
  assert.deepEqual(resolveStoreFile(`/nix/store/${a}/rel`, dirs, 't'), { storePath: `/nix/store/${a}/dir/file`, host: path.join(store, a, 'dir/file') });
  assert.equal(resolveStoreFile(`/nix/store/${b}/abs/file`, dirs, 't')!.storePath, `/nix/store/${a}/dir/file`);
  assert.equal(resolveStoreFile(`/nix/store/${b}/nothing`, dirs, 't'), undefined);
  assert.throws(() => resolveStoreFile(`/nix/store/${b}/out`, dirs, 't'), { code: 'STORE_PATH_INVALID' });
});

test('bootEntries: default ids, files on the build machine', () => {
  const sys = readBootEntries([{ title: 'Debian', kernel: 'kernel', initrd: 'initrd', cmdline: 'root=/dev/vda2' }, { title: 'Other', kernel: 'kernel', cmdline: '', id: 'other' }], work);
  assert.equal(sys.toplevel, undefined);
  assert.deepEqual(sys.entries.map((e) => [e.id, e.title, e.kernel.host, e.initrd?.host, e.options]), [
    ['entry-1', 'Debian', path.join(work, 'kernel'), path.join(work, 'initrd'), 'root=/dev/vda2'],
    ['other', 'Other', path.join(work, 'kernel'), undefined, ''],
  ]);
  assert.throws(() => readBootEntries([{ title: 'x', kernel: 'nope', cmdline: '' }], work), { code: 'SOURCE_MISSING' });
});
