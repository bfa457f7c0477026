// Shared by the command tests (inspect, ls, cat, extract, diff): whole-disk
// builds of the build fixture (test/build/fixture.ts), made in-process, and
// the CLI run the way a user runs it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildImage, type DiskLayout } from '../../src/api/build.ts';
import { DiskwrightError } from '../../src/errors.ts';
import { validateConfig } from '../../src/config/load.ts';
import { diskwright, type RunResult } from '../cli/run.ts';
import { CONTENTS, EPOCH, makeBuildSources } from '../build/fixture.ts';

export { CONTENTS, EPOCH };

export interface Built {
  image: string;
  layout: DiskLayout;
}

/** Sources for builds under `work` (rootfs/, extra/, esp/, xbootldr/). */
export function makeSources(work: string): void {
  makeBuildSources(work);
}

/** The config every command test builds: a layout, the build fixture's trees, `extra` on top. */
export function config(type: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    partitionTableType: type,
    root: 'rootfs',
    contents: CONTENTS,
    additionalSpace: '8M',
    epoch: EPOCH,
    bootSize: type === 'efixbootldr' ? '128M' : '40M',
    ...(['legacy', 'legacy+gpt', 'none'].includes(type) ? {} : { espContents: [{ source: 'esp/', target: '/' }] }),
    ...(type === 'efixbootldr' ? { xbootldrContents: [{ source: 'xbootldr/nixos', target: '/EFI/nixos' }] } : {}),
    ...extra,
  };
}

/** Builds `raw` config in `work` into work/out-`name`/. */
export function build(work: string, name: string, raw: Record<string, unknown>): Built {
  const outDir = path.join(work, `out-${name}`);
  const r = buildImage({ config: validateConfig(raw, `${name}.json`), given: new Set(Object.keys(raw)), baseDir: work, outDir });
  return { image: r.imagePath, layout: r.layout };
}

/** `diskwright ARGS` with the exit status it must end with; stdout as text. */
export function cli(args: string[], status = 0, opts: Parameters<typeof diskwright>[1] = {}): RunResult & { out: string } {
  const r = diskwright(args, opts);
  assert.equal(r.status, status, `diskwright ${args.join(' ')}: status ${r.status}\n${r.stderr}`);
  return { ...r, out: r.stdout.toString('utf8') };
}

/** A bad-input run: the status, nothing on stdout, exactly one line on stderr matching `re`. */
export function oneLine(args: string[], status: number, re: RegExp): string {
  const r = diskwright(args);
  assert.equal(r.status, status, `diskwright ${args.join(' ')}: status ${r.status}\n${r.stderr}`);
  assert.equal(r.stdout.length, 0, `stdout: ${r.stdout.toString().slice(0, 200)}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], re);
  return lines[0];
}

/** Copies a (sparse) file. */
export function copy(from: string, to: string): string {
  fs.copyFileSync(from, to);
  return to;
}

/** In-process: `fn` throws a DiskwrightError with `code` whose message is one line matching `re` (the CLI prints it after "diskwright: "). */
export function throwsOneLine(fn: () => unknown, code: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DiskwrightError, `not a DiskwrightError: ${(e as Error)?.stack}`);
    assert.equal(e.code, code, e.message);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}
