#!/usr/bin/env node
// The command. In a checkout (src/ beside bin/) it runs the TypeScript
// sources, which Node strips of their types; in the installed package it runs
// the compiled dist/ (Node strips no types under node_modules, and the package
// ships no .ts). Building an image allocates many short-lived objects; a small
// young generation keeps peak memory near the live metadata. V8 takes that
// flag only at start-up, so the CLI replaces itself (execve, no second
// process) with one that has it.
// Kept to syntax every Node parses, so an old Node reaches the version check
// and says what it needs instead of failing on a TypeScript import.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
// 22.15 and 23.11: the first with zstd in zlib and process.execve.
if (major < 22 || (major === 22 && minor < 15) || (major === 23 && minor < 11)) {
  process.stderr.write(`diskwright: needs Node.js 22.15 or newer (24 recommended); this is ${process.version}. Install Node.js 24 with your package manager or with nvm (\`nvm install 24\`), or in a checkout of diskwright run \`npm install\` and use \`npx diskwright\` (its dev dependency brings Node 24).\n`);
  process.exit(1);
}

const source = new URL('../src/cli/main.ts', import.meta.url);
const fromSource = existsSync(source);
// Node's own warnings become our one-line style below; the experimental
// notes of node:sqlite and of type stripping on Node 22 are not for users.
const flags = ['--max-semi-space-size=2', '--no-warnings'];
if (fromSource) {
  // `import 'diskwright'` in a config (examples/disk.ts) resolves to the sources, not to a dist/ that may not be built.
  flags.push('--conditions=diskwright-source');
  if (major === 22 && minor < 18) flags.push('--experimental-strip-types');
}
const missing = flags.filter((f) => !process.execArgv.includes(f));
// convert keeps little in memory and loads no config (the only user of the
// condition), so it runs in this process: a second start of Node would cost it
// as much as its modules do. Not where the sources need a flag to load at all.
const inProcess = process.argv[2] === 'convert' && !missing.includes('--experimental-strip-types');
if (missing.length === 0 || inProcess) {
  // In place of --no-warnings: Node's own printer goes, ours below stays.
  if (missing.includes('--no-warnings')) process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w.name !== 'ExperimentalWarning') process.stderr.write(`diskwright: warning: ${w.message}\n`);
  });
  // Type-stripping and compiling the sources costs each run more than a
  // small convert does; Node keeps the result in its compile cache (under
  // the temp dir, or NODE_COMPILE_CACHE; NODE_DISABLE_COMPILE_CACHE=1 turns it
  // off). Only speed depends on it, never an output byte.
  const { enableCompileCache } = await import('node:module');
  if (typeof enableCompileCache === 'function') enableCompileCache();
  await import(fromSource ? source : new URL('../dist/cli/main.js', import.meta.url));
} else {
  const self = fileURLToPath(import.meta.url);
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...missing, self, ...process.argv.slice(2)], process.env);
}
