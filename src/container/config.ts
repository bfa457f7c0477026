// The container config: dockerTools.streamLayeredImage's options (same names,
// same defaults) plus nix2container's perms and diskwright's layering, as one
// zod schema. Read from the same file kinds as disk configs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { DiskwrightError } from '../errors.ts';
import { parsed, readRaw } from '../config/load.ts';
import { content, SYSTEMS } from '../config/schema.ts';

const id = z.number().int().nonnegative().max(2 ** 32 - 2);
// Text only: a bare 0644 in YAML or JSON is the decimal number 644, not the mode.
const MODE_TEXT = 'expected an octal mode in quotes, such as "0755"';
const octalMode = z.string({ error: MODE_TEXT }).regex(/^0?[0-7]{1,4}$/, MODE_TEXT);

const perm = z.strictObject({
  path: z.string().regex(/^\//, 'expected an absolute path in the image such as /nix/store/...-app or /etc'),
  regex: z.string().optional(),
  mode: octalMode.optional(),
  uid: id.optional(),
  gid: id.optional(),
  uname: z.string().optional(),
  gname: z.string().optional(),
});

/** The Docker/OCI image config keys nixpkgs' `config` takes (Go names, as the image spec writes them). */
const imageConfig = z.strictObject({
  Cmd: z.array(z.string()).optional(),
  Entrypoint: z.array(z.string()).optional(),
  Env: z.array(z.string().regex(/^[^=]+=/, 'expected NAME=value')).optional(),
  WorkingDir: z.string().optional(),
  User: z.string().optional(),
  ExposedPorts: z.record(z.string().regex(/^[0-9]+(-[0-9]+)?(\/(tcp|udp|sctp))?$/, 'expected a port such as "80/tcp"'), z.strictObject({})).optional(),
  Volumes: z.record(z.string().regex(/^\//, 'expected an absolute path'), z.strictObject({})).optional(),
  Labels: z.record(z.string(), z.string()).optional(),
  StopSignal: z.string().optional(),
});

/** An RFC 3339 time such as 1970-01-01T00:00:01Z, or "now". */
const time = z.union([
  z.literal('now'),
  z.string().refine((v) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(v) && !Number.isNaN(Date.parse(v)), { message: 'expected an RFC 3339 time such as "1970-01-01T00:00:01Z", or "now"' }),
]);

export const MAX_LAYERS_LIMIT = 127;

export const containerConfigSchema = z.strictObject({
  name: z.string().min(1).regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'expected an image name such as "hello" or "registry.example/app"'),
  tag: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'expected a tag of letters, digits, ".", "_" and "-", at most 128 characters').optional(),
  contents: z.array(z.union([z.string().min(1), content])).default([]),
  config: imageConfig.default({}),
  architecture: z.string().min(1).optional(),
  system: z.enum(SYSTEMS).default('x86_64-linux'),
  created: time.default('1970-01-01T00:00:01Z'),
  mtime: time.default('1970-01-01T00:00:01Z'),
  uid: id.default(0),
  gid: id.default(0),
  uname: z.string().default('root'),
  gname: z.string().default('root'),
  maxLayers: z.number().int().min(2).max(MAX_LAYERS_LIMIT).default(100),
  /** A docker-archive, oci-archive or OCI layout directory (relative to the config) whose layers go first. */
  fromImage: z.string().min(1).optional(),
  /** Which image of a fromImage holding several (nixpkgs' fromImageName/fromImageTag). */
  fromImageName: z.string().min(1).optional(),
  fromImageTag: z.string().min(1).optional(),
  layering: z.enum(['popularity', 'size']).default('popularity'),
  layerCompression: z.enum(['none', 'gzip', 'zstd']).default('none'),
  includeStorePaths: z.boolean().default(true),
  /** Nix's database registering the image's store paths, plus gcroots/docker/<root>, in the customisation layer. */
  includeNixDB: z.boolean().default(false),
  perms: z.array(perm).default([]),
  storePaths: z.array(z.string().min(1)).default([]),
  additionalPaths: z.array(z.string().min(1)).default([]),
  storeDir: z.string().min(1).optional(),
  nixStoreDir: z.string().regex(/^\/./, 'expected an absolute directory such as /nix/store').default('/nix/store'),
  storeReferences: z.string().min(1).optional(),
  /** diskwright's: the layer cache directory (relative to the config), or false for none. */
  layerCache: z.union([z.string().min(1), z.literal(false)]).optional(),
});

export type ContainerConfigInput = z.input<typeof containerConfigSchema>;
export type ContainerConfig = z.output<typeof containerConfigSchema>;

/** Typed identity for .ts configs: `export default defineContainer({ ... })`. */
export function defineContainer(config: ContainerConfigInput): ContainerConfigInput {
  return config;
}

export function validateContainerConfig(raw: unknown, file: string): ContainerConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DiskwrightError('CONFIG_INVALID', `config ${file}: expected an object of options at the top level`, { file });
  }
  if (!('name' in raw)) throw new DiskwrightError('CONFIG_INVALID', `config ${file}: no "name"; give the image a name such as "hello"`, { file, path: ['name'] });
  return parsed(containerConfigSchema.safeParse(raw), file);
}

export async function loadContainerConfig(file: string): Promise<{ config: ContainerConfig; baseDir: string }> {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) {
    throw new DiskwrightError('CONFIG_UNREADABLE', `config ${file}: no such file; give the path of a .json, .yaml, .toml or .ts config`, { file });
  }
  return { config: validateContainerConfig(await readRaw(abs), file), baseDir: path.dirname(abs) };
}

/** Seconds since the epoch of a config time; "now" reads the clock (the image is then not reproducible). */
export function configTime(t: string): number {
  return t === 'now' ? Math.floor(Date.now() / 1000) : Math.floor(Date.parse(t) / 1000);
}

/** The OCI/Go architecture name of a Nix system. */
export function architectureOf(system: (typeof SYSTEMS)[number]): { architecture: string; variant?: string } {
  const map: Record<(typeof SYSTEMS)[number], { architecture: string; variant?: string }> = {
    'x86_64-linux': { architecture: 'amd64' },
    'i686-linux': { architecture: '386' },
    'aarch64-linux': { architecture: 'arm64' },
    'armv7l-linux': { architecture: 'arm', variant: 'v7' },
    'riscv64-linux': { architecture: 'riscv64' },
    'loongarch64-linux': { architecture: 'loong64' },
    'powerpc64le-linux': { architecture: 'ppc64le' },
    's390x-linux': { architecture: 's390x' },
  };
  return map[system];
}
