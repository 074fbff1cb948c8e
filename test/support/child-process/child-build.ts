/**
 * Test support: transpiles a TypeScript entry file and the relative imports it reaches into
 * plain ESM JavaScript in a temporary directory, so that a test can run the real code in a
 * child process (plain `node`, killable with SIGKILL). The directory links the project's
 * node_modules so packages resolve.
 */
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const projectRoot = resolve(dirname(new URL(import.meta.url).pathname), '../../..');

/** Returns the temporary directory; `entries` are project-relative .ts paths, found at the same relative .js path inside it. */
export function buildForChild(entries: readonly string[]): string {
  const out = mkdtempSync(join(tmpdir(), 'chatgate-child-'));
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  symlinkSync(join(projectRoot, 'node_modules'), join(out, 'node_modules'), 'dir');
  const seen = new Set<string>();
  const pending = entries.map((entry) => resolve(projectRoot, entry));
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    const output = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
      fileName: file,
    }).outputText;
    const target = join(out, relative(projectRoot, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, output);
    for (const match of output.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)\.js['"]/g)) {
      const imported = resolve(dirname(file), `${match[1]!}.ts`);
      if (existsSync(imported)) pending.push(imported);
    }
  }
  return out;
}
