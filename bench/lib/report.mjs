// Markdown helpers: number formatting, ratios, tables, and the BENCHMARKS.md section swap.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const fmt = (v, digits = 0) => (typeof v === 'number' && Number.isFinite(v) ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—');
export const fmtMs = (v) => (typeof v === 'number' && Number.isFinite(v) ? `${v.toFixed(3)}` : '—');
export const fmtMB = (bytes) => (typeof bytes === 'number' && Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(1)}` : '—');
export const fmtPct = (f) => (typeof f === 'number' && Number.isFinite(f) ? `±${(f * 100).toFixed(0)}%` : '');

/** a / b as "1.23x"; "—" when either is missing. */
export function ratio(a, b) {
  if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return undefined;
  return a / b;
}
export const fmtRatio = (r) => (typeof r === 'number' && Number.isFinite(r) ? `${r.toFixed(2)}x` : '—');

/** A cell: median with spread, or the error / status that stands in for it. */
export function cell(summary, f = (v) => fmt(v)) {
  if (!summary) return '—';
  if (summary.median === undefined) return summary.status ?? (summary.errors?.length ? `error: ${truncate(summary.errors[0], 60)}` : '—');
  const sp = fmtPct(summary.spread);
  return sp ? `${f(summary.median)} (${sp})` : f(summary.median);
}

export function truncate(s, n) {
  s = String(s).replace(/\|/g, '/').replace(/\s+/g, ' ');
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function table(headers, rows) {
  const esc = (c) => String(c ?? '').replace(/\|/g, '\\|');
  return [`| ${headers.map(esc).join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

const START = '<!-- bench:latest:start (written by bench/run.mjs; edit outside these markers) -->';
const END = '<!-- bench:latest:end -->';

/** `old` with the block between `start` and `end` replaced by `section` (appended when the markers are missing). */
function swapSection(old, start, end, section) {
  const block = `${start}\n${section.trim()}\n${end}`;
  const a = old.indexOf(start);
  const b = old.indexOf(end);
  return a >= 0 && b > a ? `${old.slice(0, a)}${block}${old.slice(b + end.length)}` : `${old.trimEnd()}\n\n${block}\n`;
}

/**
 * Replaces the section `tag` (markers `<!-- bench:<tag>:start ... -->` / `<!-- bench:<tag>:end -->`)
 * of an existing BENCHMARKS.md, written by `writer`; everything else in the file is kept.
 */
export function writeMarkedSection(file, tag, writer, section) {
  const start = `<!-- bench:${tag}:start (written by ${writer}; edit outside these markers) -->`;
  const end = `<!-- bench:${tag}:end -->`;
  writeFileSync(file, swapSection(existsSync(file) ? readFileSync(file, 'utf8') : '# Tollgate benchmarks\n', start, end, section));
}

/** Replaces the generated section of BENCHMARKS.md, keeping everything people wrote around it. */
export function writeBenchmarksMd(file, section) {
  const block = `${START}\n${section.trim()}\n${END}`;
  let text;
  if (existsSync(file)) {
    text = swapSection(readFileSync(file, 'utf8'), START, END, section);
  } else {
    text = `# Tollgate benchmarks

Method, how to run and how to read these tables: [docs/benchmarks.md](docs/benchmarks.md).
The section between the markers below is rewritten by \`npm run bench\` / \`npm run bench:quick\`;
everything outside them is kept.

${block}

## Tuning log

Each change to the hot path: what changed, the command, and the before/after ratio from the same
machine (copy the rows from the run before and after).

| date | change | scenario | before | after |
|---|---|---|---|---|
`;
  }
  writeFileSync(file, text);
}

/**
 * A partial run (`--scenario X --write`): replaces only the `### ` subsections the run produced
 * inside the generated block (matched by their heading up to the first "."), or inserts them before
 * "### Targets", so the rest of the latest full run (and sections other scripts wrote) stays.
 */
export function writeBenchmarksSubsections(file, sections) {
  if (!existsSync(file)) return writeBenchmarksMd(file, sections.join('\n\n'));
  let text = readFileSync(file, 'utf8');
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b <= a) return writeBenchmarksMd(file, sections.join('\n\n'));
  let block = text.slice(a + START.length, b);
  for (const section of sections) {
    const heading = section.trim().split('\n')[0];
    if (!heading.startsWith('### ')) continue;
    const key = heading.split('.')[0];
    const at = block.split('\n').findIndex((l) => l.startsWith('### ') && l.split('.')[0] === key);
    const lines = block.split('\n');
    if (at >= 0) {
      let end = lines.findIndex((l, i) => i > at && (l.startsWith('### ') || l.startsWith('## ')));
      if (end < 0) end = lines.length;
      lines.splice(at, end - at, ...`${section.trim()}\n`.split('\n'));
    } else {
      let before = lines.findIndex((l) => l.startsWith('### Targets'));
      if (before < 0) before = lines.length - 1;
      lines.splice(before, 0, ...`${section.trim()}\n`.split('\n'));
    }
    block = lines.join('\n');
  }
  text = `${text.slice(0, a + START.length)}${block}${text.slice(b)}`;
  writeFileSync(file, text);
}
