// Regenerates schema/cloud.schema.json (a unit test fails when it is stale).
import { writeFile } from 'node:fs/promises';
import { cloudJsonSchema } from '../src/catalog/json-schema.js';

await writeFile(new URL('../schema/cloud.schema.json', import.meta.url), cloudJsonSchema());
console.log('wrote schema/cloud.schema.json');
