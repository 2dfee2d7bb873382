/**
 * The serving process loads only what serving needs: `tollgate run` builds its snapshot in a child
 * process (cli/snapshot-worker.ts), so the YAML parsers, the decoders, the model, the snapshot
 * generators, analyze and the authoring tools never enter its memory. This follows the imports
 * that load code when `bin.ts` and `run.ts` are loaded (type-only imports are erased; `import()`
 * loads on demand, on a path that is not serving) and fails on any module of the config pipeline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const srcRoot = join(repo, 'src');

/** Specifiers of the imports that load a module at import time: no `import type`, no `import()`. */
export function loadingImportsOf(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s+(type\s+)?(?:[\w*{}\s,$]*?\sfrom\s*)?['"]([^'"]+)['"]/g;
  for (const m of text.matchAll(re)) if (m[1] === undefined) out.push(m[2]!);
  return out;
}

/** Modules (relative to src/, or package names) whose code a serving process must not load. */
const PIPELINE = [/^config\/(load|decode|kinds|schema\/)/, /^model\//, /^snapshot\/build\.ts$/, /^snapshot\/generate\/(?!origin\.ts$)/, /^analyze\//, /^author\//, /^controlplane\/(config-source|server|kubernetes\/)/, /^cli\/(common|run-config|snapshot-worker)\.ts$/, /^(yaml|js-yaml)$/];

function servingModules(roots: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    const key = relative(srcRoot, file);
    if (seen.has(key)) return;
    seen.add(key);
    for (const spec of loadingImportsOf(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
      else if (!spec.startsWith('node:')) seen.add(spec);
    }
  };
  for (const r of roots) visit(join(srcRoot, r));
  return seen;
}

test('the scanner skips type-only and dynamic imports and keeps packages', () => {
  const text = `import { a } from './a.js';\nimport type { B } from '../b.js';\nexport type { C } from './c.js';\nimport { d, type D } from './d.js';\nconst e = await import('./e.js');\nimport { parse } from 'yaml';`;
  assert.deepEqual(loadingImportsOf(text), ['./a.js', './d.js', 'yaml']);
});

test('tollgate run does not load the config pipeline, analyze or the authoring tools', () => {
  const modules = servingModules(['cli/bin.ts', 'cli/main.ts', 'cli/run.ts']);
  assert.ok(modules.has('dataplane/runtime.ts') && modules.has('admin/server.ts'), 'the walk reaches the data plane and the admin server');
  const offending = [...modules].filter((m) => PIPELINE.some((p) => p.test(m))).sort();
  assert.deepEqual(offending, [], `loaded by the serving process:\n${offending.join('\n')}`);
  // The child that builds the snapshot is where the pipeline lives: if this stops holding, the test above checks nothing.
  const worker = servingModules(['cli/snapshot-worker.ts']);
  assert.ok(worker.has('config/load.ts') && worker.has('model/build.ts') && worker.has('yaml'), 'the snapshot worker loads the pipeline');
  assert.ok(existsSync(join(srcRoot, 'cli', 'snapshot-worker.ts')));
});
