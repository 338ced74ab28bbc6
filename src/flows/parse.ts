/**
 * Reading flow definitions from text: JSON, or YAML (with the `yaml` package, its safe core
 * schema: no custom tags, bounded aliases). Validation is validate.ts's job; this only turns
 * text into a plain value, or a `flow_parse_error` that says where it went wrong.
 */
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseDocument } from 'yaml';
import { FlowDefinitionError } from './errors.js';

/** Largest definition accepted, in bytes of text (or of JSON, for a value). */
export const MAX_DEFINITION_BYTES = 256 * 1024;

/** The formats a definition may be written in. */
export type FlowFormat = 'json' | 'yaml';

/**
 * Parses a definition's text. `format` defaults to JSON when the text starts with `{`, else YAML
 * (which also reads JSON).
 *
 * @example
 * ```ts
 * const raw = parseFlowText('name: hello\nsteps:\n  - id: greet\n    type: transform\n    expression: "1 + 1"\n');
 * ```
 */
export function parseFlowText(
  text: string,
  format?: FlowFormat,
  source = 'the definition',
): unknown {
  if (Buffer.byteLength(text, 'utf8') > MAX_DEFINITION_BYTES)
    throw new FlowDefinitionError(
      'flow_parse_error',
      `${source} is larger than ${MAX_DEFINITION_BYTES} bytes; split the flow`,
    );
  const fmt = format ?? (text.trimStart().startsWith('{') ? 'json' : 'yaml');
  try {
    if (fmt === 'json') return JSON.parse(text) as unknown;
    // No warnings printed (a tag it does not know, e.g. `!!js/function`, is refused instead).
    const doc = parseDocument(text, {
      schema: 'core',
      uniqueKeys: true,
      strict: true,
      logLevel: 'silent',
    });
    const problem = doc.errors[0] ?? doc.warnings[0];
    if (problem) throw problem;
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    throw new FlowDefinitionError(
      'flow_parse_error',
      `${source} is not valid ${fmt === 'json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
    );
  }
}

/** The definition files of a directory: `*.json`, `*.yaml`, `*.yml`, in name order. */
export async function readFlowDir(dir: string): Promise<Array<{ file: string; raw: unknown }>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new FlowDefinitionError(
      'flow_parse_error',
      `cannot read the flows directory ${dir}: ${(err as Error).message}`,
    );
  }
  const out: Array<{ file: string; raw: unknown }> = [];
  for (const name of names.sort()) {
    const ext = extname(name).toLowerCase();
    if (ext !== '.json' && ext !== '.yaml' && ext !== '.yml') continue;
    const file = join(dir, name);
    const text = await readFile(file, 'utf8');
    out.push({ file, raw: parseFlowText(text, ext === '.json' ? 'json' : 'yaml', file) });
  }
  return out;
}
