// Reads a config file by its extension (JSON, YAML, TOML, or a .ts/.js module
// exporting the config) and validates it. Every problem is one line naming
// the file and the key.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { errnoWords } from '../util/sys-error.ts';
import { parse as parseYaml } from 'yaml';
import { parse as parseToml } from 'smol-toml';
import type { z } from 'zod';
import { DiskwrightError } from '../errors.ts';
import { imageConfigSchema, type ImageConfig } from './schema.ts';
import { fromMakeExt4Fs, makeExt4FsSchema } from '../disk/presets/make-ext4-fs.ts';
import { fromSdImage, sdImageSchema } from '../disk/presets/sd-image.ts';

export interface LoadedConfig {
  config: ImageConfig;
  /** Keys the file set itself (so "given" can be told from "defaulted"). */
  given: Set<string>;
  file: string;
  /** Relative paths in the config resolve against this directory. */
  baseDir: string;
}

/**
 * The object a config file holds, by its extension; not yet validated (build,
 * initrd and container configs). A top-level `$schema` string, which points
 * editors at the JSON Schema (`diskwright schema`), is dropped.
 */
export async function readRaw(file: string): Promise<unknown> {
  const raw = await readObject(file);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || typeof (raw as { $schema?: unknown }).$schema !== 'string') return raw;
  const { $schema: _, ...rest } = raw as Record<string, unknown>;
  return rest;
}

async function readObject(file: string): Promise<unknown> {
  const ext = path.extname(file).toLowerCase();
  if (['.ts', '.mts', '.js', '.mjs'].includes(ext)) {
    let mod: { default?: unknown; config?: unknown };
    try {
      mod = await import(pathToFileURL(file).href);
    } catch (err) {
      const first = String((err as Error).message).split('\n').find((l) => l.trim()) ?? 'cannot load';
      throw new DiskwrightError('CONFIG_INVALID', `config ${file}: cannot load the module: ${first}`, { file });
    }
    return mod.default ?? mod.config;
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DiskwrightError('CONFIG_UNREADABLE', `config ${file}: ${code === 'ENOENT' ? 'no such file' : errnoWords(code ?? 'EIO')}; give the path of a .json, .yaml, .toml or .ts config`, { file });
  }
  try {
    if (ext === '.json') return JSON.parse(text);
    if (ext === '.yaml' || ext === '.yml') return parseYaml(text);
    if (ext === '.toml') return parseToml(text);
  } catch (err) {
    const first = String((err as Error).message).split('\n')[0];
    throw new DiskwrightError('CONFIG_INVALID', `config ${file}: not valid ${ext.slice(1).toUpperCase()}: ${first}`, { file });
  }
  throw new DiskwrightError('CONFIG_UNREADABLE', `config ${file}: unknown extension "${ext}"; use .json, .yaml, .yml, .toml, .ts or .js`, { file });
}

function keyPath(p: PropertyKey[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`)).join('') || '(top level)';
}

/** One line for the first schema problem, naming the key and the file. */
export function describeIssue(file: string, issue: z.core.$ZodIssue): string {
  const at = keyPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    const where = issue.path.length ? ` in ${at}` : '';
    return `config ${file}: unknown key ${keys}${where}; check the spelling against the README's option table`;
  }
  return `config ${file}: key ${at}: ${issue.message}`;
}

export function parsed<T>(r: z.ZodSafeParseResult<T>, file: string): T {
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new DiskwrightError('CONFIG_INVALID', describeIssue(file, issue), { file, path: issue.path.map(String) });
  }
  return r.data;
}

/** A make-ext4-fs or sd-image config (`builder: ...`) as the build config it means; others as they are. */
function translate(raw: object, file: string): object {
  if (!('builder' in raw)) return raw;
  if ((raw as { builder: unknown }).builder === 'make-disk-image') {
    const { builder: _, ...rest } = raw as Record<string, unknown>;
    return rest;
  }
  if ((raw as { builder: unknown }).builder === 'sd-image') return fromSdImage(parsed(sdImageSchema.safeParse(raw), file));
  return fromMakeExt4Fs(parsed(makeExt4FsSchema.safeParse(raw), file));
}

export function validateConfig(raw: unknown, file: string): ImageConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DiskwrightError('CONFIG_INVALID', `config ${file}: expected an object of options at the top level`, { file });
  }
  return parsed(imageConfigSchema.safeParse(translate(raw, file)), file);
}

export async function loadConfig(file: string): Promise<LoadedConfig> {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) {
    throw new DiskwrightError('CONFIG_UNREADABLE', `config ${file}: no such file; give the path of a .json, .yaml, .toml or .ts config`, { file });
  }
  return configOf(await readRaw(abs), abs, path.dirname(abs), file);
}

/**
 * A config given as an object (the library's build from data): validated as
 * a file's would be, named `name` in messages, relative paths against `baseDir`.
 */
export function configOf(raw: unknown, file: string, baseDir: string, name = file): LoadedConfig {
  const config = validateConfig(raw, name);
  const given = new Set(Object.keys(raw !== null && typeof raw === 'object' ? translate(raw, name) : {}));
  return { config, given, file, baseDir };
}
