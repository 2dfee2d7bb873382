import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { expandPaths, loadPaths, parseText } from './load.js';

test('directories are read recursively, sorted, only yaml/yml/json; an explicit file of any name is read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-load-'));
  try {
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'b.yaml'), 'kind: Namespace\napiVersion: v1\nmetadata: {name: b}\n');
    writeFileSync(join(dir, 'sub', 'a.yml'), 'kind: Namespace\napiVersion: v1\nmetadata: {name: a}\n');
    writeFileSync(join(dir, 'c.json'), '{"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "c"}}');
    writeFileSync(join(dir, 'notes.txt'), 'not config');
    writeFileSync(join(dir, '.hidden.yaml'), 'kind: x');
    const { files } = expandPaths([dir]);
    assert.deepEqual(files.map((f) => f.slice(dir.length + 1)), ['b.yaml', 'c.json', 'sub/a.yml']);
    assert.deepEqual(expandPaths([join(dir, 'notes.txt')]).files.length, 1);
    const r = loadPaths([dir]);
    assert.equal(r.documents.length, 3);
    assert.deepEqual(r.skipped.map((f) => f.slice(dir.length + 1)), ['notes.txt']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stdin is read with -f -; missing paths are reported', () => {
  const r = loadPaths(['-', '/nonexistent/x.yaml'], () => 'kind: Namespace\napiVersion: v1\nmetadata: {name: s}\n');
  assert.equal(r.documents.length, 1);
  assert.equal(r.documents[0]?.file, '<stdin>');
  assert.equal(r.diagnostics[0]?.code, 'TG_CONFIG_NOT_FOUND');
});

test('lineOf finds nested nodes; blockStartLine gives the first content line of a block scalar', () => {
  const { documents } = parseText('# c\n---\na:\n  b:\n  - x: 1\n    y: |\n      first\n      second\n', 'f.yaml');
  const d = documents[0]!;
  assert.equal(d.line, 3);
  assert.equal(d.lineOf(['a', 'b', 0, 'x']), 5);
  assert.equal(d.lineOf(['a', 'missing', 'deeper']), 3, 'falls back to the nearest existing ancestor');
  assert.equal(d.blockStartLine(['a', 'b', 0, 'y']), 7);
});
