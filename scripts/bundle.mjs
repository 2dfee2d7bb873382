#!/usr/bin/env node
// Bundles the CLI into dist/bundle/ (esbuild), the files `tollgate` runs from: bin.js, the snapshot
// worker that `run -f` forks (snapshot-loader.ts finds it next to itself), and shared chunks, one
// per command or lazily imported part, so `run` loads a few files instead of ~120 modules.
// Type checking stays with tsc (`npm run build` runs both).
//
// Why a bundle: a proxy runs once per pod, and each module costs memory for as long as the process
// lives (its source text, module record and scope, and the loader's work to resolve and link it);
// the bundle measured about 6 MB less RSS at start than tsc's output (BENCHMARKS.md).
//
// Comments and whitespace are left out and the output must be ASCII: V8 keeps each module's source
// text in memory, and a single non-ASCII character (esbuild keeps some comments verbatim, and
// regular expressions as written) makes it hold the whole chunk at two bytes per character.
// Function and class names are kept (no renaming), so stack traces still name the code;
// dist/bundle/*.js.map maps them to src/ (`node --enable-source-maps`).
//
//   node scripts/bundle.mjs [--outdir DIR]   DIR (default dist/bundle) is emptied first; it must be
//                                            inside the repository, where node_modules is found
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { outdir: { type: 'string', default: join(repo, 'dist/bundle') } } });
const outdir = resolve(values.outdir);

rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: repo,
  entryPoints: ['src/cli/bin.ts', 'src/cli/snapshot-worker.ts'],
  outdir,
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Dependencies stay in node_modules: they load only on the paths that use them.
  packages: 'external',
  charset: 'ascii',
  minifyWhitespace: true,
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
});

const twoByte = [];
for (const file of Object.keys(result.metafile.outputs)) {
  if (!file.endsWith('.js')) continue;
  const text = readFileSync(join(repo, file), 'latin1');
  const at = text.search(/[^\x00-\x7f]/);
  if (at >= 0) twoByte.push(`${file}: ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 20))}`);
}
if (twoByte.length > 0) {
  console.error(`bundle: non-ASCII characters in the output (write them as \\u escapes in src/):\n  ${twoByte.join('\n  ')}`);
  process.exit(1);
}
const files = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'));
console.log(`bundle: ${files.length} files in ${relative(process.cwd(), outdir) || '.'}`);
