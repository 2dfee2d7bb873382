/**
 * The directory source: loads `-f` paths, watches them, debounces bursts of changes, and only
 * hands over a config that validates. A config with errors is rejected with its diagnostics
 * (file:line) and the last good one stays in force.
 */
import { formatDiagnostic, hasErrors, type Diagnostic } from '../config/diagnostics.js';
import { decodeResources } from '../config/decode.js';
import { loadPaths, ParseCache } from '../config/load.js';
import { buildModel, type Model } from '../model/build.js';
import { watchPaths, type PathWatch } from './file-watch.js';

/** An object that failed validation and was served without (the Kubernetes source skips, the file source rejects). */
export interface LeftOutObject {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** Where it came from: `k8s:<resource>/<namespace>/<name>`. */
  readonly source: string;
  /** Formatted diagnostics, each with its fix. */
  readonly errors: readonly string[];
}

export interface ConfigVersion {
  readonly model: Model;
  readonly diagnostics: readonly Diagnostic[];
  readonly leftOut: readonly LeftOutObject[];
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
  /**
   * ...but at most this long after the first change of a burst (default 1000 ms), so a source that
   * never stops changing still applies (Istio's PILOT_DEBOUNCE_MAX).
   */
  readonly maxDebounceMs?: number;
  /** Refuse a config with no objects when the last good one had some (a dangerous config needs an explicit opt-in). */
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

/**
 * The acceptance rule every source shares: a config with errors, or one that suddenly has no
 * objects (unless allowed), is rejected and the last good one stays; an accepted one gets the next
 * generation number. Listeners hear about both.
 */
export class ConfigGate {
  current: ConfigVersion | undefined;
  lastRejection: Rejection | undefined;
  private generation = 0;
  private readonly listeners: ConfigListener[] = [];

  constructor(private readonly allowEmpty: boolean, private readonly what: string) {}

  onChange(fn: ConfigListener): void {
    this.listeners.push(fn);
  }

  offer(model: Model, diagnostics: readonly Diagnostic[], leftOut: readonly LeftOutObject[] = []): ConfigEvent {
    let problem: Diagnostic[] = diagnostics.filter((d) => d.severity === 'error');
    if (!hasErrors(diagnostics) && !this.allowEmpty && this.current && this.current.model.resources.length > 0 && model.resources.length === 0) {
      problem = [{ severity: 'error', code: 'TG_CONFIG_EMPTY', message: `${this.what} now yields no objects (the running config has ${this.current.model.resources.length}); refusing it`, hint: 'pass --allow-empty-config if an empty config is really intended' }];
    }
    let event: ConfigEvent;
    if (problem.length > 0) {
      this.lastRejection = { at: Date.now(), diagnostics: problem, summary: problem.map(formatDiagnostic).join('\n') };
      event = { kind: 'rejected', rejection: this.lastRejection };
    } else {
      this.current = { model, diagnostics, leftOut, generation: ++this.generation, loadedAt: Date.now() };
      this.lastRejection = undefined;
      event = { kind: 'accepted', config: this.current };
    }
    for (const l of this.listeners) l(event);
    return event;
  }
}

export function loadModel(paths: readonly string[], cache?: ParseCache): { model: Model; diagnostics: Diagnostic[] } {
  const loaded = loadPaths(paths, undefined, cache);
  const decoded = decodeResources(loaded.documents);
  const model = buildModel(decoded.resources);
  return { model, diagnostics: [...loaded.diagnostics, ...decoded.diagnostics, ...model.diagnostics] };
}

export class FileConfigSource implements ConfigSource {
  private watching: PathWatch | undefined;
  private readonly cache = new ParseCache();
  private readonly gate: ConfigGate;

  constructor(private readonly opts: ConfigSourceOptions) {
    this.gate = new ConfigGate(opts.allowEmpty === true, 'the config files');
  }

  get config(): ConfigVersion | undefined {
    return this.gate.current;
  }

  get rejection(): Rejection | undefined {
    return this.gate.lastRejection;
  }

  onChange(fn: ConfigListener): void {
    this.gate.onChange(fn);
  }

  /** Loads now; returns the accepted config or the rejection. */
  reload(): ConfigEvent {
    const { model, diagnostics } = loadModel(this.opts.paths, this.cache);
    return this.gate.offer(model, diagnostics);
  }

  /**
   * Watches every path (directories recursively); a burst of events causes one reload, at the
   * latest `maxDebounceMs` after the burst began.
   */
  watch(): void {
    this.watching = watchPaths(this.opts.paths, { debounceMs: this.opts.debounceMs ?? 200, maxDebounceMs: this.opts.maxDebounceMs ?? 1000 }, () => this.reload());
  }

  close(): void {
    this.watching?.close();
    this.watching = undefined;
  }
}
