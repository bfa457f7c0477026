// Building configs through the CLI and checking each partition with its own
// tool, for the disk-spec tests: sfdisk --json for the table, e2fsck and
// debugfs for ext4, fsck.fat and mtools for FAT.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { diskwright, type RunResult } from '../cli/run.ts';
import { e2fsck, run } from '../oracle/tools.ts';
import { diffSnapshots, snapshotTree, snapshotViaDebugfs } from '../oracle/snapshot.ts';
import { fsckFat, hostTree, mcopyTree, mlabel } from '../oracle/fat-tools.ts';
import { cut } from '../build/fixture.ts';
import type { DiskLayout } from '../../src/api/build.ts';

export interface Built extends RunResult {
  out: string;
  image: string;
  layout: DiskLayout;
}

/** `diskwright build` of `config` written as NAME.json under `work`. */
export function buildConfig(work: string, name: string, config: object): Built {
  fs.writeFileSync(path.join(work, `${name}.json`), JSON.stringify(config));
  const out = path.join(work, `out-${name}`);
  const r = diskwright(['build', `${name}.json`, '-o', out], { cwd: work });
  assert.equal(r.status, 0, r.stderr);
  const layout: DiskLayout = JSON.parse(fs.readFileSync(path.join(out, 'layout.json'), 'utf8'));
  return { ...r, out, image: path.join(out, layout.image), layout };
}

/**
 * `diskwright build` of `config` (as NAME.json under `work`), which must fail
 * with one line matching `pattern`, exit 1, nothing on standard output and
 * nothing under the output directory; returns the line.
 */
export function buildFails(work: string, name: string, config: object, pattern: RegExp): string {
  fs.writeFileSync(path.join(work, `${name}.json`), JSON.stringify(config));
  const out = path.join(work, `out-${name}`);
  const r = diskwright(['build', `${name}.json`, '-o', out], { cwd: work });
  assert.equal(r.status, 1, `exit status; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.equal(r.stdout.length, 0, 'nothing on standard output');
  if (fs.existsSync(out)) assert.deepEqual(fs.readdirSync(out), []);
  return lines[0];
}

export function sfdiskJson(image: string) {
  return JSON.parse(run('sfdisk', ['--json', image]).stdout.toString()).partitiontable;
}

/** Partition `n` (1-based, per layout.json) cut out of `image` into its own file. */
export function cutPartition(work: string, image: string, layout: DiskLayout, n: number): string {
  const p = layout.partitions[n - 1];
  const file = path.join(work, `${path.basename(path.dirname(image))}-p${n}`);
  cut(image, p.start, p.size, file);
  return file;
}

/** e2fsck -fn clean, and the files equal `expectDir` (owners, modes, times, bytes). */
export async function checkExt4(part: string, expectDir: string): Promise<void> {
  const f = e2fsck(part);
  assert.equal(f.status, 0, f.output);
  assert.deepEqual(diffSnapshots(snapshotTree(expectDir), await snapshotViaDebugfs(part), { labels: ['expected', 'image'] }), []);
}

/** fsck.fat -n clean, the label, and the files equal `expectDir` through mcopy. */
export function checkFat(part: string, expectDir: string, label: string, work: string): void {
  const f = fsckFat(part);
  assert.ok(f.clean, f.output);
  assert.equal(mlabel(part), label);
  const got = fs.mkdtempSync(path.join(work, 'mcopy-'));
  mcopyTree(part, got);
  assert.deepEqual(hostTree(got), hostTree(expectDir));
}

/** A copy of `src` owned by root, as a build without preserveOwners stores it. */
export function stageAsRoot(src: string, dest: string): string {
  run('cp', ['-a', src, dest]);
  run('chown', ['-R', '-h', '0:0', dest]);
  return dest;
}
