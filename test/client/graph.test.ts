import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * `keel/client` must run where the engine cannot (a browser, an edge function), so the modules
 * it loads at run time are checked from the sources, without a build: every import that is
 * emitted (not `import type` / `export type`; under `verbatimModuleSyntax` an inline
 * `import { type X }` is still emitted as a side-effect import, so it counts) is followed from
 * src/client/index.ts. The closure may hold only the client's own files and four modules of
 * src/core that import nothing else of Keel's but each other (errors, durations, the retry
 * policy, debounce/throttle options), and no package or
 * `node:` module at all. test/package.test.ts checks the built package the same way at run
 * time (`keel/client` loads no driver).
 */
const ROOT = resolve(import.meta.dirname, '../..');
const ENTRY = join(ROOT, 'src/client/index.ts');
const CORE_ALLOWED = [
  'src/core/errors.ts',
  'src/core/duration.ts',
  'src/core/retry.ts',
  'src/core/flow.ts',
];

/** The module specifiers a file loads at run time. */
function runtimeImports(file: string): string[] {
  const source = ts.createSourceFile(
    file,
    readFileSync(file, 'utf8'),
    ts.ScriptTarget.Latest,
    true,
  );
  const found: string[] = [];
  const literal = (node: ts.Node | undefined): void => {
    if (node && ts.isStringLiteral(node)) found.push(node.text);
    else found.push(`<non-literal in ${file}>`);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      if (!node.importClause?.isTypeOnly) literal(node.moduleSpecifier);
    } else if (ts.isExportDeclaration(node)) {
      if (node.moduleSpecifier && !node.isTypeOnly) literal(node.moduleSpecifier);
    } else if (ts.isImportEqualsDeclaration(node)) {
      if (!node.isTypeOnly) found.push(`<import = in ${file}>`);
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (
        callee.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(callee) && callee.text === 'require')
      )
        literal(node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Every file reached from `entry` by run-time imports, and every specifier that is not a relative file. */
function closure(entry: string): { files: string[]; external: string[] } {
  const files = new Set<string>();
  const external = new Set<string>();
  const stack = [entry];
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const spec of runtimeImports(file)) {
      if (!spec.startsWith('.')) {
        external.add(spec);
        continue;
      }
      stack.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
    }
  }
  const rel = (f: string) => relative(ROOT, f).split('\\').join('/');
  return { files: [...files].map(rel).sort(), external: [...external].sort() };
}

describe('the module graph of keel/client', () => {
  it('loads only its own files and four self-contained modules of src/core at run time', () => {
    const { files, external } = closure(ENTRY);
    expect(external).toEqual([]);
    const outside = files.filter((f) => !f.startsWith('src/client/'));
    expect(outside.sort()).toEqual([...CORE_ALLOWED].sort());
    // Every file of the client is part of it (none is left out of the check).
    const own = readdirSync(join(ROOT, 'src/client'))
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .map((f) => `src/client/${f}`);
    const unreached = own.filter((f) => !files.includes(f));
    // types.ts emits nothing and is only imported as types: the one file not reached.
    expect(unreached).toEqual(['src/client/types.ts']);
    // ...and it loads nothing at run time either, so importing it could not change the answer.
    expect(runtimeImports(join(ROOT, 'src/client/types.ts'))).toEqual([]);
  });

  it('the check sees what a module loads: `keel` itself reaches the engine and node modules', () => {
    const { files, external } = closure(join(ROOT, 'src/index.ts'));
    expect(files).toContain('src/engine/engine.ts');
    expect(external.some((s) => s.startsWith('node:'))).toBe(true);
  });
});
