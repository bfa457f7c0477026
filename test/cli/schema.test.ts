// `diskwright schema`: valid draft 2020-12 JSON Schemas generated from the zod
// schemas, the copies in docs/schemas/ current, configs with `$schema` loaded,
// and the example configs valid under the published schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { diskwright, ROOT } from './run.ts';
import { ajv, checkConfig } from './json-schema.ts';
import { allJsonSchemas, configJsonSchema, outputJsonSchema, CONFIG_NAMES, OUTPUT_NAMES } from '../../src/cli/schema.ts';
import { imageConfigSchema } from '../../src/config/schema.ts';
import { loadConfig, validateConfig } from '../../src/config/load.ts';
import { loadInitrdConfig } from '../../src/config/initrd.ts';
import { loadContainerConfig } from '../../src/container/config.ts';

const DOCS = path.join(ROOT, 'docs/schemas');

test('every schema is a valid draft 2020-12 JSON Schema that Ajv compiles in strict mode', () => {
  for (const [name, js] of Object.entries(allJsonSchemas())) {
    assert.equal(js.$schema, 'https://json-schema.org/draft/2020-12/schema', name);
    assert.ok(ajv.validateSchema(js), `${name}: ${ajv.errorsText(ajv.errors)}`);
    assert.doesNotThrow(() => ajv.compile(js), name);
  }
  assert.equal(Object.keys(allJsonSchemas()).length, CONFIG_NAMES.length + OUTPUT_NAMES.length);
});

test('docs/schemas/ holds exactly the generated schemas (npm run schemas rewrites them)', () => {
  const want = allJsonSchemas();
  assert.deepEqual(fs.readdirSync(DOCS).filter((f) => f.endsWith('.json')).sort(), Object.keys(want).sort());
  for (const [name, js] of Object.entries(want)) {
    assert.equal(fs.readFileSync(path.join(DOCS, name), 'utf8'), JSON.stringify(js, null, 2) + '\n', `${name} is out of date: run npm run schemas`);
  }
});

test('diskwright schema prints the build config schema; schema output COMMAND and schema container the others', () => {
  const r = diskwright(['schema']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.toString()), configJsonSchema('config'));
  const nar = diskwright(['schema', 'output', 'nar']);
  assert.deepEqual(JSON.parse(nar.stdout.toString()), outputJsonSchema('nar-hash'));
  const bad = diskwright(['schema', 'output', 'cat']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^diskwright: schema output cat: name the command whose --json output to describe: build, /);
});

test('the config schema is the loader\'s: keys with defaults optional, unknown keys refused, $schema allowed', () => {
  assert.equal(checkConfig('config', {}), null);
  assert.equal(checkConfig('config', { $schema: './build-config.schema.json', partitionTableType: 'efi', diskSize: 'auto' }), null);
  assert.match(checkConfig('config', { partitionTableTyp: 'efi' }) ?? '', /additional properties/);
  assert.match(checkConfig('config', { partitionTableType: 'floppy' }) ?? '', /must be equal to one of the allowed values/);
  assert.equal(checkConfig('config', { builder: 'make-ext4-fs', volumeLabel: 'nixos', storePaths: [] }), null);
  // Every key the zod schema takes is in the JSON Schema.
  const props = (configJsonSchema('config').anyOf as Array<{ properties: object }>)[0].properties;
  for (const k of Object.keys(imageConfigSchema.shape)) assert.ok(k in props, k);
});

test('configs that name their schema with $schema load: build, container and initrd', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-schema-'));
  try {
    const file = (name: string, text: string) => (fs.writeFileSync(path.join(dir, name), text), path.join(dir, name));
    const build = await loadConfig(file('b.json', JSON.stringify({ $schema: './build-config.schema.json', label: 'x' })));
    assert.equal(build.config.label, 'x');
    assert.ok(!build.given.has('$schema'));
    const c = await loadContainerConfig(file('c.yaml', '# yaml-language-server: $schema=./container-config.schema.json\n$schema: ./container-config.schema.json\nname: n\n'));
    assert.equal(c.config.name, 'n');
    const i = await loadInitrdConfig(file('i.toml', '"$schema" = "./initrd-config.schema.json"\ncompressor = "zstd"\n'));
    assert.equal(i.compressor, 'zstd');
    // Without a file (the API), the key is as unknown as any other.
    assert.throws(() => validateConfig({ $schema: 'x' }, 'c.json'), /unknown key "\$schema"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the example configs are valid under the published schemas', () => {
  const disk = parseYaml(fs.readFileSync(path.join(ROOT, 'examples/disk.yaml'), 'utf8'));
  assert.equal(checkConfig('config', disk), null);
  const container = parseYaml(fs.readFileSync(path.join(ROOT, 'examples/container.yaml'), 'utf8'));
  assert.equal(checkConfig('container', container), null);
});
