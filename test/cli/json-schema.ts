// Validating against the published JSON Schemas with a validator that is not
// zod (Ajv, draft 2020-12, strict), so the schemas are checked as others read them.
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import { configJsonSchema, outputJsonSchema, type ConfigName } from '../../src/cli/schema.ts';
import type { OutputName } from '../../src/cli/output-schemas.ts';

export const ajv = new Ajv2020({ strict: true, allErrors: true });
const compiled = new Map<string, ValidateFunction>();

function validator(key: string, schema: () => object): ValidateFunction {
  let v = compiled.get(key);
  if (!v) compiled.set(key, (v = ajv.compile(schema())));
  return v;
}

/** Asserts `doc` is valid under the JSON Schema of `name`'s --json output. */
export function assertOutput(name: OutputName, doc: unknown): void {
  const v = validator(`output ${name}`, () => outputJsonSchema(name));
  assert.ok(v(doc), `${name} --json: ${ajv.errorsText(v.errors)}\n${JSON.stringify(doc).slice(0, 2000)}`);
}

/** Whether `doc` is valid under a config's JSON Schema, and the errors if not. */
export function checkConfig(name: ConfigName, doc: unknown): string | null {
  const v = validator(`config ${name}`, () => configJsonSchema(name));
  return v(doc) ? null : ajv.errorsText(v.errors);
}
