// Builder of default.nix's image derivations (structured attrs): writes the
// config and the closure Nix exported (exportReferencesGraph, path-info JSON
// that `storeReferences` reads) into the build directory, then runs
// `diskwright COMMAND config.json -o $out` (or a directory in it). `conf`
// writes both files into $out instead, for a stream script to build from
// when it runs.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const attrs = JSON.parse(fs.readFileSync(process.env.NIX_ATTRS_JSON_FILE ?? '.attrs.json', 'utf8'));
const out = attrs.outputs.out;
const dir = attrs.command === 'conf' ? out : process.cwd();
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, 'config.json'), attrs.config + '\n');
if (attrs.closure?.length) fs.writeFileSync(path.join(dir, 'closure.json'), JSON.stringify(attrs.closure) + '\n');
if (attrs.command === 'conf') process.exit(0);

// make-ext4-fs's output is the image file: build beside it, then move it
// there. sd-image's is $out/sd-image/NAME.img with $out/nix-support.
const target = attrs.imageFile ? path.resolve('result') : attrs.subdir ? path.join(out, attrs.subdir) : out;
const r = spawnSync(attrs.diskwright, [attrs.command, 'config.json', '-o', target], { stdio: 'inherit' });
if (r.error) throw r.error;
if (r.status !== 0) process.exit(r.status ?? 1);
if (attrs.imageFile) {
  const layout = JSON.parse(fs.readFileSync(path.join(target, 'layout.json'), 'utf8'));
  const image = path.join(target, layout.image);
  try {
    fs.renameSync(image, out);
  } catch (err) {
    // The build directory is often a tmpfs, the store not.
    if (err.code !== 'EXDEV') throw err;
    fs.copyFileSync(image, out);
  }
} else if (attrs.subdir) {
  fs.renameSync(path.join(target, 'nix-support'), path.join(out, 'nix-support'));
}
