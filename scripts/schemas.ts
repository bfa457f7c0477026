// Writes docs/schemas/*.json from the zod schemas (src/cli/schema.ts):
// `npm run schemas` after changing a config or --json shape;
// test/cli/schema.test.ts fails while a file is out of date.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { allJsonSchemas } from '../src/cli/schema.ts';

const dir = path.join(import.meta.dirname, '../docs/schemas');
fs.mkdirSync(dir, { recursive: true });
const schemas = allJsonSchemas();
for (const f of fs.readdirSync(dir)) if (f.endsWith('.schema.json') && !(f in schemas)) fs.rmSync(path.join(dir, f));
for (const [name, js] of Object.entries(schemas)) fs.writeFileSync(path.join(dir, name), JSON.stringify(js, null, 2) + '\n');
console.log(`wrote ${Object.keys(schemas).length} schemas to ${path.relative(process.cwd(), dir) || '.'}`);
