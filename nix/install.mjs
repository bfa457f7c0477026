// Builder of package.nix: copies diskwright's parts (store paths) into
// $out/lib/diskwright, compiles the xattr addon when given a compiler, and
// writes $out/bin/diskwright, which runs it with the Node the derivation was
// given. Real files, not symlinks: Node resolves a module's imports from its
// real path, so src/ must sit beside node_modules/.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const attrs = JSON.parse(fs.readFileSync(process.env.NIX_ATTRS_JSON_FILE ?? '.attrs.json', 'utf8'));
const out = attrs.outputs.out;
const lib = path.join(out, 'lib', 'diskwright');
for (const rel of Object.keys(attrs.parts).sort()) {
  const dest = path.join(lib, rel);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.cpSync(attrs.parts[rel], dest, { recursive: true, verbatimSymlinks: true });
}
if (attrs.addon) {
  // binding.gyp's target, as node-gyp compiles it: Node-API needs no linking against node.
  const a = attrs.addon;
  const dest = path.join(lib, 'build', 'Release', 'xattr.node');
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const args = ['-shared', '-fPIC', '-O2', ...a.defines.map((d) => `-D${d}`), '-I', a.include, ...a.sources.map((f) => path.join(lib, f)), '-o', dest];
  const r = spawnSync(a.cc, args, { stdio: 'inherit', env: { ...process.env, PATH: a.path } });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}
fs.mkdirSync(path.join(out, 'bin'));
const quote = (s) => `'${s.replaceAll("'", `'\\''`)}'`;
fs.writeFileSync(
  path.join(out, 'bin', 'diskwright'),
  `#!${attrs.shell}\nexec ${quote(attrs.node)} ${quote(path.join(lib, 'bin', 'diskwright.js'))} "$@"\n`,
  { mode: 0o755 },
);
