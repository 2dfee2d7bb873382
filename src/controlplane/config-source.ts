/**
 * The directory source: loads `-f` paths, watches them, debounces bursts of changes, and only
 * hands over a config that validates. A config with errors is rejected with its diagnostics
 * (file:line) and the last good one stays in force.
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { formatDiagnostic, hasErrors, type Diagnostic } from '../config/diagnostics.js';
import { decodeResources } from '../config/decode.js';
import { loadPaths, ParseCache } from '../config/load.js';
import { buildModel, type Model } from '../model/build.js';

export interface ConfigVersion {
  readonly model: Model;
  readonly diagnostics: readonly Diagnostic[];
  /** Monotonic counter of accepted configs. */
  readonly generation: number;
  readonly loadedAt: number;
}

export interface Rejection {
  readonly at: number;
  readonly diagnostics: readonly Diagnostic[];
  readonly summary: string;
}

export interface ConfigSourceOptions {
  readonly paths: readonly string[];
  readonly debounceMs?: number;
  /** Refuse a config with no objects when the last good one had some (GUIDE §5 F: dangerous config needs opt-in). */
  readonly allowEmpty?: boolean;
}

export type ConfigEvent = { kind: 'accepted'; config: ConfigVersion } | { kind: 'rejected'; rejection: Rejection };
export type ConfigListener = (event: ConfigEvent) => void;

/** Anything that yields validated configs over time: files today, the Kubernetes API next. */
export interface ConfigSource {
  readonly config: ConfigVersion | undefined;
  readonly rejection: Rejection | undefined;
  onChange(fn: ConfigListener): void;
  close(): void;
}

export function loadModel(paths: readonly string[], cache?: ParseCache): { model: Model; diagnostics: Diagnostic[] } {
  const loaded = loadPaths(paths, undefined, cache);
  const decoded = decodeResources(loaded.documents);
  const model = buildModel(decoded.resources);
  return { model, diagnostics: [...loaded.diagnostics, ...decoded.diagnostics, ...model.diagnostics] };
}

export class FileConfigSource implements ConfigSource {
  private current: ConfigVersion | undefined;
  private lastRejection: Rejection | undefined;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private generation = 0;
  private readonly listeners: ConfigListener[] = [];
  private readonly cache = new ParseCache();

  constructor(private readonly opts: ConfigSourceOptions) {}

  get config(): ConfigVersion | undefined {
    return this.current;
  }

  get rejection(): Rejection | undefined {
    return this.lastRejection;
  }

  onChange(fn: ConfigListener): void {
    this.listeners.push(fn);
  }

  /** Loads now; returns the accepted config or the rejection. */
  reload(): { kind: 'accepted'; config: ConfigVersion } | { kind: 'rejected'; rejection: Rejection } {
    const { model, diagnostics } = loadModel(this.opts.paths, this.cache);
    let problem: Diagnostic[] = diagnostics.filter((d) => d.severity === 'error');
    if (!hasErrors(diagnostics) && !this.opts.allowEmpty && this.current && this.current.model.resources.length > 0 && model.resources.length === 0) {
      problem = [{ severity: 'error', code: 'TG_CONFIG_EMPTY', message: `the new config has no objects (the running one has ${this.current.model.resources.length}); refusing it`, hint: 'pass --allow-empty-config if an empty config is really intended' }];
    }
    let event: { kind: 'accepted'; config: ConfigVersion } | { kind: 'rejected'; rejection: Rejection };
    if (problem.length > 0) {
      this.lastRejection = { at: Date.now(), diagnostics: problem, summary: problem.map(formatDiagnostic).join('\n') };
      event = { kind: 'rejected', rejection: this.lastRejection };
    } else {
      this.current = { model, diagnostics, generation: ++this.generation, loadedAt: Date.now() };
      this.lastRejection = undefined;
      event = { kind: 'accepted', config: this.current };
    }
    for (const l of this.listeners) l(event);
    return event;
  }

  /** Watches every path (directories recursively); a burst of events causes one reload. */
  watch(): void {
    const debounce = this.opts.debounceMs ?? 200;
    const schedule = (): void => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.reload();
      }, debounce);
    };
    for (const p of this.opts.paths) {
      if (p === '-') continue;
      try {
        if (statSync(p).isDirectory()) {
          this.watchers.push(watch(p, { recursive: true, persistent: false }, schedule));
        } else {
          // Editors save by writing a new file and renaming it over the old one, which ends a
          // watch on the file itself: watch its directory and pick out its name.
          const name = basename(p);
          this.watchers.push(watch(dirname(p), { persistent: false }, (_e, f) => {
            if (f === null || f === name) schedule();
          }));
        }
      } catch {
        // A path that disappears is reported by the next reload; keep watching the others.
      }
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }
}
