#!/usr/bin/env node
// Runs the TypeScript sources directly (Node >= 24 strips types). Building an
// image allocates many short-lived objects; a small young generation keeps peak
// memory near the live metadata. V8 takes that flag only at start-up, so the
// CLI replaces itself (execve, no second process) with one that has it.
// Kept to syntax every Node parses, so an old Node reaches the version check
// and says what it needs instead of failing on a TypeScript import.
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
// 22.15: the first with zstd in zlib and process.execve; 22.18: types stripped by default.
if (major < 22 || (major === 22 && minor < 18) || (major === 23 && minor < 6)) {
  process.stderr.write(`diskwright: needs Node.js 22.18 or newer (24 recommended); this is ${process.version}. Install it with your package manager or nvm, or run \`npm install\` here and use \`npx diskwright\` (the project's dev dependency brings Node 24).\n`);
  process.exit(1);
}

const FLAG = '--max-semi-space-size=2';
if (process.execArgv.includes(FLAG) || typeof process.execve !== 'function') {
  // Stripping the sources' types is most of a small command's start-up (a
  // second of CPU for a warm container rebuild): Node's compile cache keeps
  // the stripped code and V8's code cache between runs, in NODE_COMPILE_CACHE
  // or else the temporary directory's node-compile-cache; a cache it cannot
  // write is silently not used.
  const mod = await import('node:module');
  if (typeof mod.enableCompileCache === 'function') mod.enableCompileCache();
  await import('../src/cli/main.ts');
} else {
  const self = fileURLToPath(import.meta.url);
  process.execve(process.execPath, [process.execPath, ...process.execArgv, FLAG, self, ...process.argv.slice(2)], process.env);
}
