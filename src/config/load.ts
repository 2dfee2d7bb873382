/**
 * Reads untrusted YAML/JSON from files, directories and stdin into RawDocuments that remember
 * where every node was written, so that any later diagnostic can point at a file and line.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { load as loadYaml, CORE_SCHEMA } from 'js-yaml';
import { LineCounter, parseAllDocuments, isMap, isScalar, type Document } from 'yaml';
import type { Diagnostic, SourcePos } from './diagnostics.js';

export type Path = readonly (string | number)[];

/** One YAML document: its plain JS value plus a way to find the line of any path inside it. */
export interface RawDocument {
  readonly value: unknown;
  readonly file: string;
  /** Line of the document's first node. */
  readonly line: number;
  /** Line where the node at `path` was written (falls back to the nearest ancestor that exists). */
  lineOf(path: Path): number;
  /** For block scalars (`value: |`): the line of the first content line of the scalar at `path`. */
  blockStartLine(path: Path): number | undefined;
}

export interface LoadResult {
  readonly documents: RawDocument[];
  readonly diagnostics: Diagnostic[];
  readonly files: string[];
  /** Files found in directories but not read (not *.yaml|*.yml|*.json), so a report can say so. */
  readonly skipped: string[];
}

const CONFIG_FILE = /\.(ya?ml|json)$/i;

/** Expands `-f` arguments: files as given, directories recursively (sorted), `-` for stdin. */
export function expandPaths(paths: readonly string[]): { files: string[]; skipped: string[]; diagnostics: Diagnostic[] } {
  const files: string[] = [];
  const skipped: string[] = [];
  const diagnostics: Diagnostic[] = [];
  const walk = (p: string, explicit: boolean): void => {
    let st;
    try {
      st = statSync(p);
    } catch {
      diagnostics.push({ severity: 'error', code: 'TG_CONFIG_NOT_FOUND', message: `${p}: no such file or directory`, pos: { file: p, line: 0 } });
      return;
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) {
        if (name.startsWith('.')) continue;
        walk(join(p, name), false);
      }
    } else if (explicit || CONFIG_FILE.test(p)) {
      files.push(p);
    } else {
      skipped.push(p);
    }
  };
  for (const p of paths) {
    if (p === '-') files.push('-');
    else walk(p, true);
  }
  return { files, skipped, diagnostics };
}

/**
 * Parse results by file, reused while the file's size, mtime and inode are unchanged: a watcher
 * reloading a directory of thousands of objects re-parses only the files that changed.
 */
export class ParseCache {
  private readonly entries = new Map<string, { key: string; result: { documents: RawDocument[]; diagnostics: Diagnostic[] } }>();

  get(file: string, key: string): { documents: RawDocument[]; diagnostics: Diagnostic[] } | undefined {
    const e = this.entries.get(file);
    return e && e.key === key ? e.result : undefined;
  }

  set(file: string, key: string, result: { documents: RawDocument[]; diagnostics: Diagnostic[] }): void {
    this.entries.set(file, { key, result });
  }

  /** Forget files that are no longer part of the config. */
  retain(files: ReadonlySet<string>): void {
    for (const f of this.entries.keys()) if (!files.has(f)) this.entries.delete(f);
  }
}

export function loadPaths(paths: readonly string[], readStdin: () => string = () => readFileSync(0, 'utf8'), cache?: ParseCache): LoadResult {
  const { files, skipped, diagnostics } = expandPaths(paths);
  const documents: RawDocument[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = file === '-' ? readStdin() : readFileSync(file, 'utf8');
    } catch (err) {
      diagnostics.push({ severity: 'error', code: 'TG_CONFIG_READ', message: `cannot read ${file}: ${String(err)}`, pos: { file, line: 0 } });
      continue;
    }
    // Keyed by content, not stat(): a file replaced by rename within one timestamp tick can keep
    // its size, mtime and (reused) inode, and must still be parsed again. Hashing is ~100x cheaper
    // than parsing.
    const key = cache && file !== '-' ? createHash('sha256').update(text).digest('base64') : undefined;
    const hit = key !== undefined ? cache?.get(file, key) : undefined;
    if (hit) {
      documents.push(...hit.documents);
      diagnostics.push(...hit.diagnostics);
      continue;
    }
    const r = parseText(text, file === '-' ? '<stdin>' : file);
    if (cache && key !== undefined) cache.set(file, key, r);
    documents.push(...r.documents);
    diagnostics.push(...r.diagnostics);
  }
  cache?.retain(new Set(files));
  return { documents, diagnostics, files, skipped };
}

/**
 * Parses one file's text (multi-document YAML; JSON is YAML). Syntax errors become diagnostics.
 *
 * Two parsers, one result: js-yaml builds values about 8x faster than `yaml`, but keeps no source
 * positions, so each document is parsed with js-yaml and re-parsed with `yaml` (which has them)
 * only when a line number inside it is asked for, or when js-yaml refuses it (for the precise
 * error). Files using anchors/aliases, directives or content on a `---` line take the `yaml`
 * path whole: it bounds alias expansion and handles every form.
 */
export function parseText(text: string, file: string): { documents: RawDocument[]; diagnostics: Diagnostic[] } {
  const slices = FAST_PATH_UNSAFE.test(text) ? undefined : splitDocuments(text);
  if (!slices) return parseWithPositions(text, file, 0);
  const documents: RawDocument[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const slice of slices) {
    let value: unknown;
    try {
      value = loadYaml(slice.text, { schema: CORE_SCHEMA, json: false });
    } catch {
      const precise = parseWithPositions(slice.text, file, slice.lineOffset);
      documents.push(...precise.documents);
      diagnostics.push(...precise.diagnostics);
      continue;
    }
    if (value === undefined || value === null) continue; // empty document (only comments or `---`)
    if (slice.text.includes('::')) value = colonPairsAsScalars(value);
    documents.push(lazyDocument(value, file, slice));
  }
  return { documents, diagnostics };
}

// Directives, anchors/aliases, tags, or a `---`/`...` line carrying content: use the positional parser.
const FAST_PATH_UNSAFE = /^%|^(?:---|\.\.\.)[ \t]+[^#\s]|(?:^|[\s[{,])[&*!][^\s,\]}]/m;
const DOC_MARKER = /^(?:---|\.\.\.)[ \t]*(?:#.*)?$/;

interface DocSlice {
  readonly text: string;
  /** Lines before this slice in the file (add to a line within the slice). */
  readonly lineOffset: number;
}

function splitDocuments(text: string): DocSlice[] {
  const lines = text.split('\n');
  const slices: DocSlice[] = [];
  let start = 0;
  for (let i = 0; i <= lines.length; i++) {
    if (i === lines.length || DOC_MARKER.test(lines[i] ?? '')) {
      if (i > start) slices.push({ text: lines.slice(start, i).join('\n'), lineOffset: start });
      start = i + 1;
    }
  }
  return slices;
}

function firstContentLine(slice: DocSlice): number {
  const lines = slice.text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = (lines[i] ?? '').trim();
    if (l !== '' && !l.startsWith('#')) return slice.lineOffset + i + 1;
  }
  return slice.lineOffset + 1;
}

function lazyDocument(value: unknown, file: string, slice: DocSlice): RawDocument {
  let positional: RawDocument | undefined;
  const positions = (): RawDocument | undefined => {
    positional ??= parseWithPositions(slice.text, file, slice.lineOffset).documents[0];
    return positional;
  };
  const line = firstContentLine(slice);
  return {
    value,
    file,
    line,
    lineOf: (path) => positions()?.lineOf(path) ?? line,
    blockStartLine: (path) => positions()?.blockStartLine(path),
  };
}

function parseWithPositions(text: string, file: string, lineOffset: number): { documents: RawDocument[]; diagnostics: Diagnostic[] } {
  const lineCounter = new LineCounter();
  const documents: RawDocument[] = [];
  const diagnostics: Diagnostic[] = [];
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [];
  for (const doc of list) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const line = (e.pos ? lineCounter.linePos(e.pos[0]).line : 0) + lineOffset;
        diagnostics.push({
          severity: 'error',
          code: 'TG_CONFIG_YAML',
          message: `YAML syntax: ${e.message.split('\n')[0]}`,
          pos: { file, line },
          hint: 'fix the YAML syntax at this line; the whole document was skipped',
        });
      }
      continue;
    }
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) continue; // empty document (only comments or a trailing `---`)
    documents.push(makeRawDocument(doc, file, lineCounter, lineOffset));
  }
  return { documents, diagnostics };
}

function makeRawDocument(doc: Document.Parsed, file: string, lc: LineCounter, lineOffset: number): RawDocument {
  const startOffset = doc.contents?.range?.[0] ?? 0;
  const lineAt = (offset: number): number => lc.linePos(offset).line + lineOffset;
  type Ranged = { range?: [number, number, number] | null };
  // A map entry is located by its key (where `field:` is written), a list item by its value.
  const nodeAt = (path: Path): Ranged | undefined => {
    for (let n = path.length; n >= 0; n--) {
      if (n === 0) return doc.contents as Ranged | undefined;
      const last = path[n - 1];
      if (typeof last === 'string') {
        const parent = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1), true);
        if (isMap(parent)) {
          const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === last);
          if (pair && isScalar(pair.key)) return pair.key as Ranged;
        }
        continue;
      }
      const node = doc.getIn(path.slice(0, n), true);
      if (node && typeof node === 'object' && 'range' in node) return node as Ranged;
    }
    return undefined;
  };
  const js: unknown = doc.toJS({ maxAliasCount: 100 });
  return {
    value: colonPairsAsScalars(js),
    file,
    line: lineAt(startOffset),
    lineOf(path: Path): number {
      const r = nodeAt(path)?.range;
      return r ? lineAt(r[0]) : lineAt(startOffset);
    },
    blockStartLine(path: Path): number | undefined {
      const node = doc.getIn(path, true);
      if (!isScalar(node) || !node.range) return undefined;
      const isBlock = node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED';
      return lineAt(node.range[0]) + (isBlock ? 1 : 0);
    },
  };
}

export function posOf(doc: RawDocument, path: Path): SourcePos {
  return { file: doc.file, line: doc.lineOf(path) };
}

/**
 * `[1.2.3.4, 2001:db8::]`: YAML reads the trailing `:` of an IPv6 list item as a key indicator and
 * yields `{"2001:db8:": null}`; Kubernetes' YAML reader (and so Istio) keeps the string
 * `"2001:db8::"`. List items of that one-pair shape are turned back into that string.
 */
export function colonPairsAsScalars(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map((item: unknown) => {
      if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
        const entries = Object.entries(item as Record<string, unknown>);
        const [first] = entries;
        if (entries.length === 1 && first && first[1] === null && first[0].includes(':')) return `${first[0]}:`;
      }
      return colonPairsAsScalars(item);
    });
  }
  if (value !== null && typeof value === 'object') {
    const rec = value as Record<string, unknown>;
    for (const k of Object.keys(rec)) rec[k] = colonPairsAsScalars(rec[k]);
  }
  return value;
}
