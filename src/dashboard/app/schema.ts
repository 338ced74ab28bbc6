/** A starting value for a JSON editor from a handler's input JSON Schema. */
import type { JsonSchema } from './types.js';

export function exampleOf(schema: JsonSchema | undefined, depth = 0): unknown {
  if (schema === undefined || depth > 6) return null;
  if ('default' in schema) return schema.default;
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
    const options = schema[k];
    if (Array.isArray(options)) {
      // Prefer a non-null choice: `string | null` starts as a string.
      const pick = (options as JsonSchema[]).find((o) => o.type !== 'null') ?? options[0];
      return exampleOf(pick as JsonSchema, depth + 1);
    }
  }
  const type = Array.isArray(schema.type)
    ? (schema.type as string[]).find((t) => t !== 'null')
    : schema.type;
  switch (type) {
    case 'object': {
      const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
      const out: Record<string, unknown> = {};
      for (const [name, p] of Object.entries(props)) out[name] = exampleOf(p, depth + 1);
      return out;
    }
    case 'array': {
      const items = schema.items as JsonSchema | undefined;
      const min = typeof schema.minItems === 'number' ? schema.minItems : 0;
      return items && min > 0 ? [exampleOf(items, depth + 1)] : [];
    }
    case 'string':
      if (schema.format === 'date-time') return new Date().toISOString();
      if (schema.format === 'email') return 'someone@example.com';
      if (typeof schema.minLength === 'number' && schema.minLength > 0)
        return 'x'.repeat(schema.minLength);
      return '';
    case 'integer':
    case 'number':
      return typeof schema.minimum === 'number'
        ? schema.minimum
        : typeof schema.exclusiveMinimum === 'number'
          ? schema.exclusiveMinimum + 1
          : 0;
    case 'boolean':
      return false;
    default:
      return null;
  }
}
