// Runs the diskwright CLI the way a user does, for tests.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const BIN = path.join(ROOT, 'bin/diskwright.js');

export interface RunResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

/** `diskwright ARGS`, optionally under a umask and as another user. */
export function diskwright(args: string[], opts: SpawnSyncOptions & { umask?: string; asUser?: number } = {}): RunResult {
  let cmd = process.execPath;
  let argv = [BIN, ...args];
  if (opts.umask || opts.asUser) {
    const inner = `umask ${opts.umask ?? '022'}; exec "$0" "$@"`;
    argv = ['-c', inner, process.execPath, BIN, ...args];
    cmd = '/bin/sh';
    if (opts.asUser) {
      argv = ['--reuid', String(opts.asUser), '--regid', String(opts.asUser), '--clear-groups', '/bin/sh', ...argv];
      cmd = 'setpriv';
    }
  }
  const r = spawnSync(cmd, argv, { maxBuffer: 1 << 30, ...opts });
  return { status: r.status, stdout: r.stdout as Buffer, stderr: String(r.stderr) };
}

/** `diskwright ARGS` in `cwd`, which must succeed; its standard error. */
export function diskwrightIn(cwd: string, args: string[], opts: Parameters<typeof diskwright>[1] = {}): string {
  const r = diskwright(args, { cwd, ...opts });
  assert.equal(r.status, 0, `diskwright ${args.join(' ')}\n${r.stderr}`);
  return r.stderr;
}

/** Writes `value` as `dir/name` (pretty JSON) and returns the file's path. */
export function writeJsonIn(dir: string, name: string, value: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}
