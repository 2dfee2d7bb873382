/**
 * The catalogue (src/catalogue/catalogue.ts) is the one list of flags, reasons and codes:
 * docs/errors.md is generated from it, and every reason / analyzer code the code can emit is in it.
 * The code is scanned for the shapes reasons and codes are written in (failure('UF', 'reason'),
 * reply(status, 'FLAG', 'reason'), tollgate_reason = 'reason', report('error', 'TG_...'), ...).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ANALYZER_CODES, ERROR_CODES, REASONS, RESPONSE_FLAGS } from '../src/catalogue/catalogue.js';
import { renderErrorsDoc } from '../src/catalogue/errors-doc.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const REASON_SHAPES = [
  /\breason\s*[:=]\s*'([a-z][a-z0-9_]*)'/g,
  /tollgate_reason\s*=\s*'([a-z][a-z0-9_]*)'/g,
  /\bfailure\(\s*'[A-Z,]+'\s*,\s*'([a-z][a-z0-9_]*)'/g,
  /\bdenied\(\s*'([a-z][a-z0-9_]*)'/g,
  /\b(?:reply|sendLocalReply|fail)\(\s*[^,()]+,\s*'[A-Z,-]+'\s*,\s*'([a-z][a-z0-9_]*)'/g,
  /\b(?:abortResponse|timeout|abort|end)\(\s*'[A-Z,]+'\s*,\s*'([a-z][a-z0-9_]*)'/g,
  /'(?:[A-Z]{2,}|-)'\s*,\s*'([a-z][a-z0-9]*_[a-z0-9_]+)'/g,
  /_REASON\s*=\s*'([a-z][a-z0-9_]*)'/g,
];
const CODE_SHAPES = [/\breport\(\s*'(?:error|warning|info)'\s*,\s*'((?:TG|IST)[A-Z0-9_]*)'/g, /\bcode:\s*'((?:TG|IST)[A-Z0-9_]*)'/g, /\bdiag\([^)]*?'((?:TG|IST)_[A-Z0-9_]+)'/g];

function scan(dirs: string[], shapes: RegExp[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const d of dirs) {
    for (const f of sources(join(repo, d))) {
      const text = readFileSync(f, 'utf8');
      for (const re of shapes) for (const m of text.matchAll(re)) if (!found.has(m[1]!)) found.set(m[1]!, relative(repo, f));
    }
  }
  return found;
}

test('docs/errors.md is generated from the catalogue (npm run docs:errors)', () => {
  assert.equal(readFileSync(join(repo, 'docs', 'errors.md'), 'utf8'), renderErrorsDoc());
});

test('every reason the data plane, trace and the CLI can log is in the catalogue', () => {
  const known = new Set(REASONS.map((r) => r.reason));
  const used = scan(['src/dataplane', 'src/trace', 'src/cli', 'src/snapshot'], REASON_SHAPES);
  assert.ok(used.size > 40, `the scan found only ${used.size} reasons: the shapes no longer match the code`);
  const missing = [...used].filter(([r]) => !known.has(r)).map(([r, f]) => `${r} (${f})`);
  assert.deepEqual(missing, [], `reasons missing from src/catalogue/catalogue.ts:\n${missing.join('\n')}`);
});

test('every analyzer and config code is in the catalogue; every flag a reason names is a known flag', () => {
  const known = new Set([...ANALYZER_CODES, ...ERROR_CODES].map((c) => c.code));
  const used = scan(['src/analyze', 'src/model', 'src/config'], CODE_SHAPES);
  assert.ok(used.size > 30, `the scan found only ${used.size} codes`);
  const missing = [...used].filter(([c]) => !known.has(c) && !c.startsWith('TG_HTTP_') && !c.startsWith('TG_TLS_') && !c.startsWith('TG_NET_') && !c.startsWith('TG_HOST_')).map(([c, f]) => `${c} (${f})`);
  assert.deepEqual(missing, [], `codes missing from src/catalogue/catalogue.ts:\n${missing.join('\n')}`);
  const flags = new Set(RESPONSE_FLAGS.map((f) => f.flag));
  for (const r of REASONS) for (const f of r.flag.split(/[ /,]+/)) if (f !== '' && f !== '-') assert.ok(flags.has(f), `${r.reason}: flag ${f} is not in RESPONSE_FLAGS`);
  const names = [...REASONS.map((r) => r.reason), ...ANALYZER_CODES.map((c) => c.code), ...ERROR_CODES.map((c) => c.code)];
  assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), [], 'one entry per reason / code');
});
