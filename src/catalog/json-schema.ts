import { z } from 'zod';
import { buildCloudSchema } from '../spec/schema.js';
import { catalog } from './index.js';

/** The cloud file's JSON Schema for editors, from the same zod schema that validates it. */
export function cloudJsonSchema(): string {
  const schema = z.toJSONSchema(buildCloudSchema(catalog), { io: 'input', unrepresentable: 'any' });
  return `${JSON.stringify({ ...schema, title: 'podstack cloud file' }, null, 2)}\n`;
}
