#!/usr/bin/env node
// Runs the TypeScript sources directly (Node >= 24 strips types). Building an
// image allocates many short-lived objects; a small young generation keeps peak
// memory near the live metadata. V8 takes that flag only at start-up, so the
// CLI replaces itself (execve, no second process) with one that has it.
import { fileURLToPath } from 'node:url';

const FLAG = '--max-semi-space-size=2';
if (process.execArgv.includes(FLAG) || typeof process.execve !== 'function') {
  await import('../src/cli/main.ts');
} else {
  const self = fileURLToPath(import.meta.url);
  process.execve(process.execPath, [process.execPath, ...process.execArgv, FLAG, self, ...process.argv.slice(2)], process.env);
}
