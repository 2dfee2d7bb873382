#!/usr/bin/env node
// Runs the compiled node:test files. Node 20's `--test` takes no globs, so we list the files here.
// Usage: node scripts/run-tests.mjs [dir-or-file ...]   (paths relative to the repo, e.g. src/config)
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const roots = process.argv.slice(2);
const targets = (roots.length ? roots : ['src', 'test']).map((p) => {
  const rel = relative(root, join(root, p)).replace(/\.ts$/, '.js');
  return join(root, 'dist', rel);
});

function collect(path, out) {
  if (!existsSync(path)) return;
  const st = statSync(path);
  if (st.isFile()) { if (path.endsWith('.test.js')) out.push(path); return; }
  for (const name of readdirSync(path).sort()) collect(join(path, name), out);
}

const files = [];
for (const t of targets) collect(t, files);
if (files.length === 0) {
  console.error(`run-tests: no compiled test files under ${targets.join(', ')} (did tsc run?)`);
  process.exit(1);
}
// A test that hangs (a peer that never answers, a wait with no bound) fails after 10 minutes instead of
// stalling the run: the slowest test takes about a minute on a quiet machine, five under heavy load.
const args = ['--test', '--test-concurrency=2', '--test-timeout=600000', ...files];
const res = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
process.exit(res.status ?? 1);
