// `diskwright schema [config|container|initrd|output COMMAND]`: the JSON Schemas
// of the config files and of each command's --json document, generated from
// the zod schemas the loaders and commands use (never written twice).
import { Command } from 'commander';
import { z } from 'zod';
import { imageConfigSchema } from '../config/schema.ts';
import { initrdConfigSchema } from '../config/initrd.ts';
import { containerConfigSchema } from '../container/config.ts';
import { makeExt4FsSchema } from '../disk/presets/make-ext4-fs.ts';
import { sdImageSchema } from '../disk/presets/sd-image.ts';
import { DiskwrightError } from '../errors.ts';
import { OUTPUT_SCHEMAS, type OutputName } from './output-schemas.ts';

type JsonSchema = Record<string, unknown>;

/** The config kinds `schema` knows, each with its zod schema and title. */
const CONFIGS = {
  config: {
    // The build config, or a builder preset the loader translates into one (config/load.ts).
    zod: z.union([imageConfigSchema, makeExt4FsSchema, sdImageSchema]),
    title: 'diskwright build config',
    description: "make-disk-image's options plus diskwright's own; or builder: make-ext4-fs or sd-image with theirs",
  },
  container: { zod: containerConfigSchema, title: 'diskwright container config', description: "dockerTools.streamLayeredImage's options" },
  initrd: { zod: initrdConfigSchema, title: 'diskwright initrd config', description: "makeInitrd's options plus diskwright's own" },
} as const;

export type ConfigName = keyof typeof CONFIGS;
export const CONFIG_NAMES = Object.keys(CONFIGS) as ConfigName[];
export const OUTPUT_NAMES = Object.keys(OUTPUT_SCHEMAS) as OutputName[];

/** Every object that allows no other keys also allows `$schema`, the key editors read the schema's address from. */
function allowSchemaKey(branches: JsonSchema[]): void {
  for (const b of branches) {
    if (b.type === 'object' && b.additionalProperties === false) {
      b.properties = { $schema: { type: 'string', description: 'address of this JSON Schema, for editors; ignored by diskwright' }, ...(b.properties as object) };
    }
  }
}

/** A config file's JSON Schema (draft 2020-12), as its loader accepts it: keys with defaults are optional. */
export function configJsonSchema(name: ConfigName): JsonSchema {
  const c = CONFIGS[name];
  const js = z.toJSONSchema(c.zod, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const branches = (js.anyOf as JsonSchema[] | undefined) ?? [js];
  allowSchemaKey(branches);
  // builder: make-disk-image names the plain build config explicitly (config/load.ts drops it).
  if (name === 'config') (branches[0].properties as JsonSchema).builder = { type: 'string', const: 'make-disk-image' };
  return { $schema: js.$schema, title: c.title, description: c.description, ...js };
}

/** The JSON Schema of a command's --json document. */
export function outputJsonSchema(name: OutputName): JsonSchema {
  const js = z.toJSONSchema(OUTPUT_SCHEMAS[name], { io: 'output' }) as JsonSchema;
  return { $schema: js.$schema, title: `diskwright ${name.replace('-', ' ')} --json`, ...js };
}

/** Every published schema by its file name in docs/schemas/. */
export function allJsonSchemas(): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const n of CONFIG_NAMES) out[`${n === 'config' ? 'build' : n}-config.schema.json`] = configJsonSchema(n);
  for (const n of OUTPUT_NAMES) out[`${n}-output.schema.json`] = outputJsonSchema(n);
  return out;
}

export function schemaCommand(): Command {
  return new Command('schema')
    .description('print a JSON Schema: of the build config (default), the container or initrd config, or a command\'s --json output')
    .argument('[kind]', `${CONFIG_NAMES.join(', ')} or output`, 'config')
    .argument('[command]', `with output: ${OUTPUT_NAMES.join(', ')} (nar-hash: nar hash)`)
    .action((kind: string, command: string | undefined) => {
      let js: JsonSchema;
      if (kind === 'output') {
        const name = command === 'nar' ? 'nar-hash' : command;
        if (name === undefined || !(OUTPUT_NAMES as string[]).includes(name)) {
          throw new DiskwrightError('OPTION_INVALID', `schema output ${command ?? ''}: name the command whose --json output to describe: ${OUTPUT_NAMES.join(', ')}`.replace('  ', ' '), {});
        }
        js = outputJsonSchema(name as OutputName);
      } else if ((CONFIG_NAMES as string[]).includes(kind) && command === undefined) {
        js = configJsonSchema(kind as ConfigName);
      } else {
        throw new DiskwrightError('OPTION_INVALID', `schema ${[kind, command].filter(Boolean).join(' ')}: give config, container, initrd, or output COMMAND`, {});
      }
      process.stdout.write(JSON.stringify(js, null, 2) + '\n');
    });
}
