// The `diskwright initrd --config FILE` file: makeInitrd's arguments
// (`contents: [{object, symlink, suffix}]`, `compressor`) plus diskwright's
// own (sources, epoch, store directories), JSON/YAML/TOML/TS like build configs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { DiskwrightError } from '../errors.ts';
import { INITRD_COMPRESSIONS, MTIME_MODES } from '../archive/initrd.ts';
import { describeIssue, readRaw } from './load.ts';

export const initrdConfigSchema = z.strictObject({
  sources: z.array(z.string().min(1)).default([]),
  contents: z.array(z.strictObject({
    object: z.string().min(1),
    symlink: z.string().min(1).nullable().optional(),
    suffix: z.string().optional(),
  })).default([]),
  compressor: z.enum(INITRD_COMPRESSIONS).optional(),
  compressLevel: z.number().int().min(0).max(19).optional(),
  epoch: z.number().int().nonnegative().max(0xffffffff).optional(),
  mtime: z.enum(MTIME_MODES).optional(),
  storeDir: z.string().min(1).optional(),
  nixStoreDir: z.string().min(1).optional(),
  storeReferences: z.string().min(1).optional(),
});
export type InitrdConfig = z.output<typeof initrdConfigSchema>;

/** The config, with relative sources resolved against its directory (baseDir). */
export async function loadInitrdConfig(file: string): Promise<InitrdConfig & { baseDir: string }> {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) {
    throw new DiskwrightError('CONFIG_UNREADABLE', `config ${file}: no such file; give the path of a .json, .yaml, .toml or .ts config`, { file });
  }
  const raw = await readRaw(abs);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DiskwrightError('CONFIG_INVALID', `config ${file}: expected an object of options at the top level`, { file });
  }
  const r = initrdConfigSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new DiskwrightError('CONFIG_INVALID', describeIssue(file, issue), { file, path: issue.path.map(String) });
  }
  const baseDir = path.dirname(abs);
  return { ...r.data, sources: r.data.sources.map((s) => path.resolve(baseDir, s)), baseDir };
}
