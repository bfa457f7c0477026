#!/usr/bin/env node
// Runs the TypeScript sources directly (Node >= 24 strips types). Building an
// image allocates many short-lived objects; a small young generation keeps peak
// memory near the live metadata, so the CLI re-runs itself once with that flag.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const FLAG = '--max-semi-space-size=2';
if (process.execArgv.includes(FLAG)) {
  await import('../src/cli/main.ts');
} else {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, [...process.execArgv, FLAG, self, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.signal) process.kill(process.pid, r.signal);
  process.exitCode = r.status ?? 1;
}
